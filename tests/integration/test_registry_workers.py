"""The shared registry with a real DVC remote and two working directories standing for two workers.

Worker A and worker B are separate Git + DVC projects whose only shared thing is the DVC remote (a folder here, as
a bucket in production): whatever one promotes, rolls back or records, the other sees through the remote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from feedbackflow.cli import app
from feedbackflow.config import ProjectPaths
from feedbackflow.io import read_json
from feedbackflow.modeling.predict import model_digest
from feedbackflow.stages import evaluate, promote, split, train
from feedbackflow.storage import registry as reg
from feedbackflow.storage.dvc import Dvc, DvcError
from feedbackflow.storage.registry_store import S3Store
from tests.helpers import TEMPLATES, params_settings, tiny_corpus, tiny_training_project
from tests.servers import s3_endpoint  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

SETTINGS = {
    "validate": {"taxonomy": "data/labels.json"},
    "train": {"device": "cpu", "eval_batch_size": 64},
    "evaluate": {
        "min_accuracy": 0.0,
        "min_macro_f1": 0.0,
        "min_in_scope_coverage": 0.0,
        "require_significant_gain": True,
        "bootstrap_resamples": 500,
        "min_support": 20,
        "max_class_drop": 0.05,
    },
}


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A fine-tuned tiny BERT ('good') and the same model with a freshly initialised head ('weak')."""
    import torch
    from transformers import AutoModelForSequenceClassification

    root = tmp_path_factory.mktemp("training")
    paths, settings = tiny_training_project(root, tiny_corpus(60), registry=False)
    split.run(settings, paths)
    train.run(settings, paths)
    good = root / "good"
    shutil.copytree(paths.challenger, good)
    weak = root / "weak"
    shutil.copytree(good, weak)
    model = AutoModelForSequenceClassification.from_pretrained(good)
    torch.manual_seed(1)
    model.classifier.reset_parameters()
    model.save_pretrained(weak)
    return {"good": good, "weak": weak}


def make_worker(root: Path, remote: Path) -> ProjectPaths:
    """A Git + DVC project whose default remote is the shared folder; same test split on every worker."""
    root.mkdir(parents=True)
    _git(root, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "-d", "general", str(remote)], cwd=root, check=True)
    (root / "data").mkdir()
    (root / "data" / "labels.json").write_text(json.dumps(sorted(TEMPLATES)))
    rows = [{**row, "text": row["text"].replace("ticket", "case")} for row in tiny_corpus(40)]
    test = pd.DataFrame(rows)
    test["channel"] = ["app" if i % 2 else "email" for i in range(len(test))]
    paths = ProjectPaths(root)
    paths.split.mkdir(parents=True)
    test.to_parquet(paths.split / "test.parquet")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "worker")
    return paths


def night(paths: ProjectPaths, challenger: Path, run_id: str, **evaluate_overrides) -> dict:
    """One night on one worker: take the champion from the registry, evaluate this challenger, maybe promote."""
    shutil.rmtree(paths.challenger, ignore_errors=True)
    shutil.copytree(challenger, paths.challenger)
    settings = params_settings(**{**SETTINGS, "evaluate": {**SETTINGS["evaluate"], **evaluate_overrides}})
    reg.sync_champion(paths, Dvc(paths.root))
    evaluate.run(settings, paths)
    return promote.run(settings, paths, run_id=run_id)


@pytest.fixture
def workers(tmp_path):
    remote = tmp_path / "remote"
    return make_worker(tmp_path / "worker-a", remote), make_worker(tmp_path / "worker-b", remote), remote


def test_worker_b_sees_the_champion_worker_a_promoted_and_a_clearly_better_one_replaces_it(workers, models):
    a, b, _ = workers
    first = night(a, models["weak"], "night-1")
    assert first["promoted"] and first["champion"]["version"] == "v1"
    assert first["champion"]["approved_by"] == "gate (automatic)"

    # B never saw A's disk: it gets the champion from the remote, files included, and evaluates against it
    assert not b.champion.exists()
    second = night(b, models["good"], "night-2")
    gate = read_json(b.stage_reports("evaluate") / "gate.json")
    assert gate["champion"]["version"] == "v1"
    assert gate["champion"]["model_sha256"] == model_digest(models["weak"])
    assert model_digest(b.champion) == model_digest(models["good"])  # promoted: the champion is now B's challenger
    assert second["promoted"] and second["champion"]["version"] == "v2", gate["reasons"]
    assert gate["paired"]["ci_low"] > 0  # clearly better: significant under the paired bootstrap
    assert (b.stage_reports("evaluate") / "gate.md").read_text().startswith("# Gate report: challenger vs champion v1")

    state = reg.Registry.open(a.root).head()
    assert state["champion"] == "v2"
    assert [(v["version"], v["status"]) for v in state["versions"]] == [("v1", "archived"), ("v2", "champion")]
    entry = reg.find_version(state, "v2")
    for key in ("model_sha256", "model_md5", "data_versions", "params_sha256", "metrics", "gate", "run_id"):
        assert key in entry, key
    assert entry["run_id"] == "night-2" and entry["compared_with"] == "v1"
    report = reg.Registry.open(a.root).read_report(entry["gate"]["report"]["markdown"])
    assert "significant_gain" in report and "case" not in report  # figures, never message text

    # A catches up from the remote alone
    reg.sync_champion(a, Dvc(a.root))
    assert model_digest(a.champion) == model_digest(models["good"])
    assert read_json(a.registry / "champion.json")["version"] == "v2"


def test_a_challenger_within_noise_is_rejected_and_kept_with_its_report(workers, models):
    a, b, _ = workers
    night(a, models["good"], "night-1")
    # equal within noise (here: exactly equal, a copy of the champion) is refused when significance is required
    outcome = night(b, models["good"], "night-2")
    assert not outcome["promoted"] and "gain not significant" in outcome["reason"]
    assert promote.record_rejection(b, "night-2", "gate", outcome["reason"]) is None  # the champion stays champion
    weak = night(b, models["weak"], "night-3")
    assert not weak["promoted"] and weak["reason"].startswith("gate refused")
    entry = promote.record_rejection(b, "night-3", "gate", weak["reason"])
    assert entry is not None and entry["status"] == "rejected" and entry["version"] == "v2"
    assert entry["gate"]["report"]["markdown"].endswith(".md")
    assert reg.Registry.open(a.root).champion()["version"] == "v1"  # a rejection never moves the champion
    assert promote.record_rejection(b, "night-3", "gate", weak["reason"]) is None  # recorded once


def test_a_push_failure_then_a_retry_leaves_the_champion_pushed(workers, models):
    a, b, remote = workers
    remote.mkdir(parents=True, exist_ok=True)
    (remote / "files").write_text("not a folder: every push fails")  # the DVC remote is down
    with pytest.raises(DvcError):
        night(a, models["weak"], "night-1")
    assert reg.Registry.open(b.root).champion() is None  # the pointer did not move ahead of the model
    assert reg.sync_champion(b, Dvc(b.root)) is None

    (remote / "files").unlink()  # the remote is back; Airflow retries the promote task
    retried = promote.run(params_settings(**SETTINGS), a, run_id="night-1")
    assert retried["promoted"] and retried["champion"]["version"] == "v1"
    assert reg.sync_champion(b, Dvc(b.root))["version"] == "v1"  # B pulls the files from the remote by hash
    assert model_digest(b.champion) == model_digest(models["weak"])


def test_rollback_restores_the_previous_champion_and_the_next_evaluate_uses_it(workers, models, monkeypatch):
    a, b, _ = workers
    night(a, models["weak"], "night-1")
    night(a, models["good"], "night-2")
    monkeypatch.chdir(b.root)
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(b.root))
    runner = CliRunner()
    done = runner.invoke(app, ["registry", "rollback", "v1", "--reason", "v2 misroutes refunds", "--by", "oncall"])
    assert done.exit_code == 0, done.output
    listing = runner.invoke(app, ["registry", "list"])
    assert listing.exit_code == 0 and "v1       champion" in listing.output and "v2       archived" in listing.output
    shown = runner.invoke(app, ["registry", "show", "v1"])
    assert '"reason": "v2 misroutes refunds"' in shown.output and "# Gate report" in shown.output

    state = reg.Registry.open(a.root).head()
    assert state["champion"] == "v1"
    assert state["events"][-1] | {"at": None} == {
        "at": None,
        "action": "rollback",
        "version": "v1",
        "by": "oncall",
        "reason": "v2 misroutes refunds",
        "previous": "v2",
    }
    # next night on A (which last saw v2): evaluate compares against the rolled-back champion
    assert read_json(a.registry / "champion.json")["version"] == "v2"
    assert reg.sync_champion(a, Dvc(a.root))["version"] == "v1"
    assert read_json(a.registry / "champion.json")["version"] == "v1"  # evaluate's dependency changed: DVC re-runs it
    assert model_digest(a.champion) == model_digest(models["weak"])
    again = night(a, models["good"], "night-3")
    gate = read_json(a.stage_reports("evaluate") / "gate.json")
    assert gate["champion"]["version"] == "v1"
    assert gate["champion"]["model_sha256"] == model_digest(models["weak"])
    # still clearly better than v1: the same model becomes champion again under its own version
    assert again["promoted"] and again["champion"]["version"] == "v2"
    refused = runner.invoke(app, ["registry", "rollback", "v9", "--reason", "x"])
    assert refused.exit_code == 66 and "no version 'v9'" in refused.output  # not found; 75 is the outage code


def test_a_corrupt_registry_snapshot_fails_once_naming_the_file_and_the_restore(workers, models, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from feedbackflow.orchestration.tasks import _fail_without_retry

    a, b, remote = workers
    night(a, models["weak"], "night-1")
    (remote / "registry" / "state-00000002.json").write_text('{"generation": 2, "champion": "v1", "vers')
    with pytest.raises(reg.RegistryCorruptError) as caught:
        reg.Registry.open(b.root).head()
    message = str(caught.value)
    assert "state-00000002.json is corrupt" in message and "feedbackflow registry restore 1" in message
    assert caught.value.exit_code == 65
    with pytest.raises(AirflowFailException), _fail_without_retry():  # the Airflow task fails without retries
        reg.sync_champion(b, Dvc(b.root))

    monkeypatch.chdir(b.root)
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(b.root))
    done = CliRunner().invoke(app, ["registry", "restore", "1", "--by", "oncall"])
    assert done.exit_code == 0, done.output
    assert reg.sync_champion(b, Dvc(b.root))["version"] == "v1"
    assert reg.Registry.open(b.root).head()["generation"] == 3


def test_two_runs_racing_to_promote_cannot_both_win(workers, models):
    a, b, _ = workers
    registry = reg.Registry.open(a.root)
    first = {"model_sha256": "1" * 64, "model_md5": "x.dir", "metrics": {"macro_f1": 0.5}}
    second = {"model_sha256": "2" * 64, "model_md5": "y.dir", "metrics": {"macro_f1": 0.6}}
    assert reg.promote(registry, first, None, "gate")["version"] == "v1"
    with pytest.raises(reg.RegistryConflictError, match="champion changed since evaluate"):
        reg.promote(reg.Registry.open(b.root), second, None, "gate")  # B compared with "no champion"
    assert not registry.store.create("state-00000001.json", b"{}")  # generations are create-once


def test_the_registry_in_an_s3_remote_is_compare_and_swap_too(tmp_path, s3_endpoint):  # noqa: F811
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="models")
    workers = []
    for name in ("a", "b"):
        root = tmp_path / name
        (root / ".dvc").mkdir(parents=True)
        (root / ".dvc" / "config").write_text(
            "[core]\n    remote = general\n"
            f"['remote \"general\"']\n    url = s3://models/feedbackflow\n    endpointurl = {s3_endpoint}\n"
        )
        workers.append(reg.Registry.open(root))
    a, b = workers
    assert isinstance(a.store, S3Store) and a.store.location == "s3://models/feedbackflow/registry"
    candidate = {"model_sha256": "1" * 64, "model_md5": "x.dir", "metrics": {"macro_f1": 0.5}}
    link = a.put_report("# Gate report", ".md")
    candidate["gate"] = {"reasons": ["ok"], "report": {"markdown": link}}
    assert reg.promote(a, candidate, None, "gate")["version"] == "v1"
    assert b.champion()["model_md5"] == "x.dir" and b.read_report(link) == "# Gate report"
    with pytest.raises(reg.RegistryConflictError):
        reg.promote(b, {**candidate, "model_sha256": "2" * 64}, None, "gate")
    assert not b.store.create("state-00000001.json", b"{}")  # If-None-Match: the generation exists
    assert b.generations() == [1]
