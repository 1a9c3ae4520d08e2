"""Rendering: JSON-first results as text, Markdown and HTML views."""
