"""Self-contained demo of hindsight: a recommendation team's journey replayed with real training."""
