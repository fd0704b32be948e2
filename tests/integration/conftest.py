"""Fixtures for end-to-end runs: a throw-away copy of the project, a tiny BERT and a small custom-label dataset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import TEMPLATES, build_tiny_bert, copy_stage_inputs, params_dict, tiny_corpus

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


# The pseudonym key reaches the anonymise task as an Airflow connection (here from the environment secrets backend).
PSEUDONYM_KEY = "e2e-pseudonym-key-4f1c9a7d2b6e8053"
PSEUDONYM_CONN_ID = "feedbackflow_pseudonym"


def airflow_env(project: Path, airflow_home: Path) -> dict[str, str]:
    return {
        f"AIRFLOW_CONN_{PSEUDONYM_CONN_ID.upper()}": json.dumps({"conn_type": "generic", "password": PSEUDONYM_KEY}),
        "FEEDBACKFLOW_PSEUDONYM_KEY_CONN_ID": PSEUDONYM_CONN_ID,
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "FEEDBACKFLOW_PROJECT_DIR": str(project),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DVC_NO_ANALYTICS": "1",
    }


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True):
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{command} failed ({done.returncode}):\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}")
    return done


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """A fresh Git + DVC project with the real code, a 4-label taxonomy, one batch of feedback and a tiny BERT."""
    return make_project(tmp_path_factory.mktemp("e2e"))


def make_project(base: Path, ingest: dict | None = None) -> Path:
    """Build the tiny project under ``base`` (``ingest`` overrides params.yaml's ingest section)."""
    project = base / "project"
    project.mkdir()
    for name in ("dags", "src", "plugins"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, project / name)
    copy_stage_inputs(project)
    (project / ".dvc").mkdir()
    for name in ("config", ".gitignore"):
        shutil.copy(ROOT / ".dvc" / name, project / ".dvc" / name)

    (project / "data").mkdir(exist_ok=True)  # copy_stage_inputs made it
    (project / "data" / "labels.json").write_text(json.dumps(sorted(TEMPLATES)), encoding="utf-8")
    corpus = project / "corpus.csv"
    import pandas as pd

    pd.DataFrame(tiny_corpus()).to_csv(corpus, index=False)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["validate"]["taxonomy"] = "data/labels.json"
    params["anonymise"]["detector"] = False  # the detector stage only marks it off (tests/helpers.TEST_PARAMS)
    params["train"].update(
        {"base_model": str(build_tiny_bert(base / "tiny-bert")), "epochs": 2, "batch_size": 16, "max_length": 32}
    )
    params["evaluate"].update({"min_accuracy": 0.0, "min_macro_f1": 0.0, "min_in_scope_coverage": 0.0})
    params["dag"].update({"retries": 1, "retry_delay_minutes": 0.05})
    params["split"].update({"validation_share": 0.15, "test_share": 0.2})
    params["anonymise"]["operators"] = {"PERSON": "pseudonym", "EMAIL_ADDRESS": "pseudonym", "IBAN_CODE": "pseudonym"}
    params["ingest"] = params_dict(ingest=ingest or {})["ingest"]  # nested sections merge: every key stays set
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")

    run(["git", "init", "-q"], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], project)
    env = airflow_env(project, base / "airflow")
    run(
        [
            str(BIN / "feedbackflow"),
            "generate",
            "--corpus",
            str(corpus),
            "--label-column",
            "label",
            "--nights",
            "1",
            "--rows-per-night",
            "300",
            "--pii-share",
            "0.2",
            "--dirt-share",
            "0.02",
        ],
        project,
        env,
    )
    run([str(BIN / "airflow"), "db", "migrate"], project, env)
    return project
