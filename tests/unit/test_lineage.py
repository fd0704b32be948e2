"""Lineage: datasets from dvc.yaml and dvc.lock, counts-only facets, the provider's extractor, one model's chain."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from feedbackflow.config import ProjectPaths
from feedbackflow.governance.chain import chain_graph, format_chain, model_chain
from feedbackflow.governance.lineage import counts_only, dvc_remotes, task_lineage
from feedbackflow.settings import load_settings
from tests.helpers import write_params

ROOT = Path(__file__).resolve().parents[2]
SECRET = "PLANTED-remote-password-7c1e"
MD5 = {
    "data/landing": "aa11.dir",
    "data/raw": "bb22.dir",
    "data/validated": "cc33.dir",
    "data/quarantine": "dd44.dir",
    "data/anonymised": "ee55.dir",
    "data/split": "ff66.dir",
    "data/split/train.parquet": "f1f1",
    "models/challenger": "ab12.dir",
    "reports/evaluate/gate.json": "9a9a",
}


def _lock(project: Path) -> None:
    def entries(paths):
        return [{"path": path, "md5": MD5.get(path, f"md5-{path}")} for path in paths]

    stages = {
        "ingest": {
            "deps": entries(["data/landing", "src/feedbackflow/stages/ingest.py"]),
            "outs": entries(["data/raw"]),
        },
        "validate": {"deps": entries(["data/raw"]), "outs": entries(["data/validated", "data/quarantine"])},
        "train": {"deps": entries(["data/split/train.parquet"]), "outs": entries(["models/challenger"])},
        "evaluate": {"deps": entries(["models/challenger"]), "outs": entries(["reports/evaluate/gate.json"])},
    }
    (project / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    (project / ".dvc").mkdir(parents=True)
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    shutil.copy(ROOT / ".dvc" / "config", project / ".dvc" / "config")
    # an S3 remote with credentials in its URL: the namespace must show the bucket, never the user or password
    (project / ".dvc" / "config.local").write_text(
        f"['remote \"general\"']\n    url = s3://ops:{SECRET}@ff-general/cache\n", encoding="utf-8"
    )
    write_params(project)
    _lock(project)
    reports = project / "reports"
    (reports / "validate").mkdir(parents=True)
    (reports / "evaluate").mkdir()
    validate = {"rows_read": 10, "rows_accepted": 7, "rows_quarantined": 3, "quarantined_by_rule": {"text_length": 3}}
    validate["sample"] = "Jane Doe wrote: card 4111 1111 1111 1111"  # text: must never reach a facet
    (reports / "validate" / "validate.json").write_text(json.dumps(validate), encoding="utf-8")
    gate = {
        "promote": True,
        "reasons": ["macro-F1 +0.02"],
        "paired": {"macro_f1_difference": 0.02, "ci_low": 0.005, "ci_high": 0.04, "confidence": 0.95},
        "challenger": {"macro_f1": 0.81},
        "champion": {"macro_f1": 0.79, "version": "v1"},
    }
    (reports / "evaluate" / "gate.json").write_text(json.dumps(gate), encoding="utf-8")
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(project))
    monkeypatch.delenv("FEEDBACKFLOW_INGEST_SOURCE", raising=False)
    return project


def test_stage_datasets_come_from_dvc_yaml_named_by_remote_and_versioned_by_dvc_lock(project: Path) -> None:
    paths = ProjectPaths.discover(project)
    validate = task_lineage(paths, "validate")
    assert next((ref.name, ref.version) for ref in validate.inputs) == ("data/raw", "bb22.dir")
    assert not any(ref.name.startswith("src/") for ref in validate.inputs), "code is not data"
    outputs = {ref.name: ref for ref in validate.outputs}
    assert outputs["data/validated"].version == "cc33.dir" and outputs["data/quarantine"].version == "dd44.dir"
    restricted = (project / "storage" / "dvc-restricted").resolve().as_uri()
    assert outputs["data/validated"].namespace == restricted  # dvc.yaml: remote: restricted
    assert outputs["reports/validate/validate.json"].namespace == "s3://ff-general/cache"  # the default remote
    assert SECRET not in json.dumps(dvc_remotes(project))
    train = task_lineage(paths, "train")
    assert ("data/split/train.parquet", "f1f1") in [(ref.name, ref.version) for ref in train.inputs]
    assert [ref.kind for ref in train.outputs if ref.name == "models/challenger"] == ["model"]
    evaluate = task_lineage(paths, "evaluate")
    assert evaluate.inputs[0].name == "models/challenger" and evaluate.inputs[0].version == "ab12.dir"


def test_ingest_reads_its_source_first(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = ProjectPaths.discover(project)
    folder = task_lineage(paths, "ingest").inputs
    assert (folder[0].kind, folder[0].name, folder[0].version) == ("source", "data/landing", "aa11.dir")
    assert [ref.name for ref in folder].count("data/landing") == 1
    monkeypatch.setenv("FEEDBACKFLOW_INGEST_SOURCE", "s3://feedback-drop/nightly")
    s3 = task_lineage(paths, "ingest").inputs[0]
    assert (s3.namespace, s3.name) == ("s3://feedback-drop", "nightly")
    monkeypatch.setenv("FEEDBACKFLOW_INGEST_SOURCE", "postgres:public.feedback")
    monkeypatch.setenv("FEEDBACKFLOW_POSTGRES_DSN", f"postgresql://app:{SECRET}@db.internal:6432/crm")
    table = task_lineage(paths, "ingest").inputs[0]
    assert (table.namespace, table.name) == ("postgres://db.internal:6432", "crm.public.feedback")


def test_tasks_outside_dvc_yaml_read_stage_outputs_and_promote_writes_the_champion(project: Path) -> None:
    paths = ProjectPaths.discover(project)
    (project / "models").mkdir()
    (project / "models" / "champion.dvc").write_text(
        yaml.safe_dump({"outs": [{"md5": "ab12.dir", "path": "champion"}]}), encoding="utf-8"
    )
    promote = task_lineage(paths, "promote")
    assert [(ref.name, ref.version) for ref in promote.inputs] == [
        ("models/challenger", "ab12.dir"),
        ("reports/evaluate/gate.json", "9a9a"),
    ]
    assert [(ref.name, ref.version, ref.kind) for ref in promote.outputs] == [("models/champion", "ab12.dir", "model")]
    assert task_lineage(paths, "gate").inputs[0].version == "9a9a"
    assert task_lineage(paths, "request") == task_lineage(paths, "no_such_task")  # no lineage: empty


def test_the_review_loop_links_the_champion_and_anonymised_rows_to_the_deliveries_ingest_reads(project: Path) -> None:
    """label_push reads the newest anonymised rows and the champion; label_pull writes the review deliveries in the
    landing folder (params.yaml's, resolved as dvc.yaml resolves it), the folder ingest reads."""
    paths = ProjectPaths.discover(project)
    (project / "models").mkdir()
    (project / "models" / "champion.dvc").write_text(
        yaml.safe_dump({"outs": [{"md5": "c0c0.dir", "path": "champion"}]}), encoding="utf-8"
    )
    push = task_lineage(paths, "label_push")
    assert [(ref.name, ref.kind) for ref in push.inputs] == [("data/anonymised", "data"), ("models/champion", "model")]
    assert push.inputs[1].version == "c0c0.dir" and push.outputs == ()
    pull = task_lineage(paths, "label_pull")
    landing = load_settings(paths.params).ingest.landing_dir
    assert pull.inputs == () and [ref.name for ref in pull.outputs] == [f"{landing}/review"]
    assert pull.outputs[0].name.startswith(task_lineage(paths, "ingest").inputs[0].name)  # inside ingest's source


def test_facets_hold_counts_only(project: Path) -> None:
    paths = ProjectPaths.discover(project)
    assert task_lineage(paths, "validate").facets == {}, "facets come with COMPLETE only"
    quality = task_lineage(paths, "validate", finished=True).facets["feedbackflow_quality"]
    assert quality == {
        "rows_read": 10,
        "rows_accepted": 7,
        "rows_quarantined": 3,
        "quarantined_by_rule": {"text_length": 3},
    }
    gate = task_lineage(paths, "evaluate", finished=True).facets["feedbackflow_gate"]
    assert gate["promote"] is True and (gate["ci_low"], gate["ci_high"], gate["confidence"]) == (0.005, 0.04, 0.95)
    assert counts_only({"a": "text", "b": [1, "x", {"c": "y", "d": 2.5}], "e": None}) == {
        "b": [1, {"d": 2.5}],
        "e": None,
    }


def test_the_extractor_gives_the_provider_versioned_datasets_and_serialisable_facets(project: Path) -> None:
    from openlineage.client.serde import Serde

    from feedbackflow.orchestration.lineage import DvcStageExtractor, operator_lineage

    lineage = operator_lineage("validate", finished=True)
    raw = json.loads(Serde.to_json(lineage.inputs[0]))
    assert raw["name"] == "data/raw" and raw["facets"]["version"]["datasetVersion"] == "bb22.dir"
    facet = json.loads(Serde.to_json(lineage.run_facets["feedbackflow_quality"]))
    assert facet["counts"]["rows_quarantined"] == 3 and facet["_schemaURL"].endswith("/feedbackflow_quality")
    assert "Jane" not in Serde.to_json(lineage.run_facets["feedbackflow_quality"])
    assert "_PythonDecoratedOperator" in DvcStageExtractor.get_operator_classnames()


def test_the_provider_finds_the_extractor_and_is_off_without_a_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.openlineage import conf
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    env = (ROOT / "feedbackflow.env").read_text(encoding="utf-8")
    name = "feedbackflow.orchestration.lineage.DvcStageExtractor"
    assert f"AIRFLOW__OPENLINEAGE__EXTRACTORS:-{name}" in env
    assert "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD:-True" in env  # no fork of a worker holding torch per event
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXTRACTORS", name)
    for variable in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "AIRFLOW__OPENLINEAGE__TRANSPORT"):
        monkeypatch.delenv(variable, raising=False)
    # (the provider caches none of its settings under pytest)
    assert ExtractorManager().extractors["_PythonDecoratedOperator"].__name__ == "DvcStageExtractor"
    assert conf.is_disabled(), "no transport configured: the provider must stay off"
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:5000")
    assert not conf.is_disabled()


def _registry(project: Path):
    from feedbackflow.storage import registry as reg

    registry = reg.Registry.open(project)
    candidate = {
        "model_sha256": "5e" * 32,
        "model_md5": "ab12.dir",
        "data_versions": {"data/anonymised": "ee55.dir", "data/split": "ff66.dir"},
        "metrics": {"accuracy": 0.9, "macro_f1": 0.81},
        "gate": {"promote": True, "reasons": ["macro-F1 +0.02"]},
        "compared_with": None,
        "run_id": "scheduled__2026-12-01",
        "created_at": "2026-12-01T03:00:00+00:00",
    }
    reg.promote(registry, candidate, None, "alice")
    return registry


def _manifest(project: Path) -> None:
    raw = project / "data" / "raw"
    raw.mkdir(parents=True)
    lines = [
        {"batch_id": "b1", "sequence": 1, "source": "folder", "key": "<script>night-1.csv", "size": 10,
         "sha256": "11" * 32, "raw_file": "b1.csv", "ingested_at": "2026-12-01T02:00:00+00:00", "run_id": "r1"},
        {"batch_id": "b2", "sequence": 2, "source": "folder", "key": "night-2.csv", "size": 10,
         "sha256": "22" * 32, "raw_file": "b2.csv", "ingested_at": "2026-12-02T02:00:00+00:00", "run_id": "r2"},
    ]  # fmt: skip
    (raw / "_manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def test_a_models_chain_joins_registry_run_record_and_manifest(project: Path) -> None:
    shutil.copy(ROOT / ".dvc" / "config", project / ".dvc" / "config.local")  # folder remotes for the registry
    paths = ProjectPaths.discover(project)
    _manifest(project)
    record = {"experiment": "run-x", "stages": {"train": True}, "data_versions": {"data/raw": "bb22.dir"}}
    paths.run_record("scheduled__2026-12-01").parent.mkdir(parents=True)
    paths.run_record("scheduled__2026-12-01").write_text(json.dumps(record), encoding="utf-8")
    chain = model_chain(paths, _registry(project).head(), "v1")
    assert [batch["batch_id"] for batch in chain["batches"]] == ["b1"], "b2 arrived after v1 was built"
    assert {step["path"]: step["md5"] for step in chain["data"]}["data/raw"] == "bb22.dir"
    assert chain["decided_by"] == "alice" and chain["model"]["model_md5"] == "ab12.dir"
    text = format_chain(chain)
    assert text.index("b1") < text.index("data/raw") < text.index("model v1") < text.index("decided by alice")
    graph = chain_graph(chain)
    assert len(graph["nodes"]) == 1 + 4 + 3 and len(graph["edges"]) == 7


def test_cli_and_governance_view_show_the_chain(project: Path) -> None:
    from fastapi.testclient import TestClient

    from feedbackflow.cli import app

    shutil.copy(ROOT / ".dvc" / "config", project / ".dvc" / "config.local")
    _manifest(project)
    _registry(project)
    done = CliRunner().invoke(app, ["lineage", "v1", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["batches"][0]["sha256"] == "11" * 32
    missing = CliRunner().invoke(app, ["lineage", "v9"])
    assert missing.exit_code != 0 and "no version 'v9'" in missing.output
    spec = importlib.util.spec_from_file_location(
        "feedbackflow_plugin_lineage", ROOT / "plugins" / "feedbackflow_plugin.py"
    )
    assert spec and spec.loader
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    client = TestClient(plugin.create_app(require_auth=False))
    page = client.get("/lineage/v1")
    assert page.status_code == 200 and "<svg" in page.text and "model v1" in page.text
    assert "<script>night" not in page.text and "&lt;script&gt;night" in page.text
    assert client.get("/lineage/v9").status_code == 404
