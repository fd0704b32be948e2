"""Shared test setup: Airflow runs embedded (SQLite in a temporary AIRFLOW_HOME), offline, without examples."""

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="feedbackflow-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("FEEDBACKFLOW_PROJECT_DIR", str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# DVC adds its console log handlers when first imported, on the sys.stdout of that moment. Imported first inside a
# test that captures output (capsys), they would keep that test's stream, closed after it, and every later in-process
# DVC call in the same worker would fail ("I/O operation on closed file", test_erasure_sweep after such a test).
import dvc  # noqa: E402, F401  (imported here, on the session's streams)
