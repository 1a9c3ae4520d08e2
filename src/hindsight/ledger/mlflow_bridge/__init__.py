"""The MLflow bridge: mirror experiments to an MLflow server, import MLflow runs.

MLflow is an optional dependency, so this module is imported only when mirroring
or importing is asked for, and says how to install MLflow when it is missing.
Everything goes through ``MlflowClient``, never the fluent ``mlflow.start_run``
API, so a user's own active MLflow run is left alone.

Importing maps MLflow statuses onto the ledger's: FINISHED → finished, FAILED →
crashed (with a diagnosed failure), KILLED → killed. MLflow has no heartbeat, and
a process that dies hard leaves its run RUNNING forever. A RUNNING (or SCHEDULED)
run whose last sign of life (start or latest metric point) is older than
``stale_after_s`` is imported as crashed, reason "MLflow run never ended (stale
RUNNING)"; a younger one is left out (``ImportResult.still_running``) and picked up
by a later import once it ends. Writing it as running would hand it to the
ledger's heartbeat reaper, which would call it dead a few minutes later.
"""

from hindsight.ledger.mlflow_bridge.importer import ImportResult, import_runs
from hindsight.ledger.mlflow_bridge.mirror import MlflowMirror

__all__ = ["ImportResult", "MlflowMirror", "import_runs"]
