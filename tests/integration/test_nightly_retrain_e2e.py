"""The whole nightly_retrain DAG through Airflow, DVC and every real library, on tiny data and a tiny BERT."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from feedbackflow.storage import partitions
from tests.helpers import TEMPLATES, assert_no_planted_value_missed

from .conftest import BIN, PSEUDONYM_KEY, airflow_env, run

pytestmark = pytest.mark.integration


def _dag_test(project: Path, conf: dict | None = None, env: dict | None = None) -> str:
    done = run(
        [str(BIN / "airflow"), "dags", "test", "nightly_retrain", *(["--conf", json.dumps(conf)] if conf else [])],
        project,
        {**airflow_env(project, project.parent / "airflow"), **(env or {})},
    )
    return done.stdout + done.stderr


def _remote_objects(project: Path, name: str) -> set[str]:
    root = project / "storage" / name
    return {"".join(path.relative_to(root).parts[-2:]) for path in root.rglob("*") if path.is_file()}


#: feedback nobody has labelled yet, in a delivery of its own (the newest): the review loop's candidates
UNLABELLED = 24


@pytest.fixture(scope="module")
def first_run(tiny_project):
    import csv

    phrases = [phrase for values in TEMPLATES.values() for phrase in values]
    with (tiny_project / "data" / "landing" / "zz-unlabelled.csv").open("w", newline="", encoding="utf-8") as handle:
        rows = [
            [f"u{n}", f"{phrases[n % len(phrases)]} (ticket {n})", "", "app", "2026-12-01T08:00:00Z"]
            for n in range(UNLABELLED)
        ]
        csv.writer(handle).writerows([["id", "text", "label", "channel", "created_at"], *rows])
    log = _dag_test(tiny_project)
    return tiny_project, log


def test_first_run_produces_every_artifact(first_run):
    project, _ = first_run
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    assert summary["validate"]["rows_quarantined"] > 0
    assert (
        summary["validate"]["rows_accepted"] + summary["validate"]["rows_quarantined"]
        == summary["validate"]["rows_read"]
    )
    assert sum(summary["anonymise"]["entities_replaced"].values()) > 0
    assert_no_planted_value_missed(summary["anonymise"]["leak_gate"])
    assert summary["evaluate"]["challenger"]["accuracy"] is not None
    assert summary["evaluate"]["gate"]["promote"] is True
    assert summary["champion"]["version"] == "v1"
    assert (project / summary["monitor"]["report"]).read_text().lstrip().lower().startswith("<")
    assert summary["experiment"] and summary["experiment"].startswith("run-")
    for name in ("model.safetensors", "config.json", "label_map.json", "tokenizer.json"):
        assert (project / "models" / "challenger" / name).is_file()
    assert json.loads((project / "models" / "challenger" / "label_map.json").read_text()) == {
        "billing": 0,
        "delivery": 1,
        "login": 2,
        "praise": 3,
    }
    gate = json.loads((project / "reports" / "evaluate" / "gate.json").read_text())
    assert gate["promote"] and gate["reasons"]
    assert any("in-scope coverage" in reason for reason in gate["reasons"])  # the coverage rule is among the rules


def test_first_run_sends_a_review_batch_picked_by_the_new_champion(first_run):
    """No Label Studio configured: label_push writes the import JSON; the summary and the view carry the night."""
    project, _ = first_run
    review = json.loads((project / "reports" / "run_summary.json").read_text())["review"]
    assert review["pull"] == {
        "mode": "files",
        "status": "ok",
        "labelled": 0,
        "disputed": 0,
        "not_sent_by_loop": 0,
        "delivery": None,
    }  # nothing answered yet
    push = review["push"]
    assert (push["mode"], push["status"]) == ("files", "ok") and push["candidates"] == UNLABELLED, push
    assert 0 < push["sent"] <= UNLABELLED
    batch = json.loads((project / push["destination"]).read_text())
    assert len(batch) == push["sent"] == review["night"]["sent"]
    queue = [json.loads(line) for line in (project / "data" / "labelling" / "queue.jsonl").read_text().splitlines()]
    assert {row["model_version"] for row in queue} == {"v1"}  # tonight's champion picked them
    assert {row["id"] for row in queue} <= {f"u{n}" for n in range(UNLABELLED)}  # unlabelled rows only


def test_dvc_lock_and_remotes(first_run):
    project, _ = first_run
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    stages = {"ingest", "validate", "detector", "anonymise", "split", "train", "evaluate", "monitor"}
    assert set(lock["stages"]) == stages
    general, restricted = _remote_objects(project, "dvc-general"), _remote_objects(project, "dvc-restricted")
    outs = {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage["outs"]}
    # directory manifests are stored as <md5>.dir
    assert outs["models/challenger"].replace(".dir", "") + ".dir" in general
    assert outs["data/anonymised"] in general
    for restricted_out in ("data/raw", "data/validated", "data/quarantine", "data/held_back"):
        assert outs[restricted_out] in restricted
        assert outs[restricted_out] not in general, f"{restricted_out} leaked to the general remote"
    assert (project / "models" / "champion.dvc").is_file()


def test_a_fresh_clone_with_an_empty_cache_restores_the_run_exactly(first_run, tmp_path):
    """README's recipe: clone, fetch the run's experiment, apply it, `dvc pull`: data, models and champion by hash."""
    project, _ = first_run
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    name = summary["experiment"]
    clone = tmp_path / "clone"
    dvc = [str(BIN / "python"), "-m", "dvc"]
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    for remote in ("general", "restricted"):  # folder remotes are relative paths: point the clone at them
        run([*dvc, "remote", "modify", "--local", remote, "url", str(project / "storage" / f"dvc-{remote}")], clone)
    run([*dvc, "exp", "pull", "origin", name], clone)
    run([*dvc, "exp", "apply", name], clone)
    assert not (clone / ".dvc" / "cache").exists() or not any((clone / ".dvc" / "cache").rglob("*.parquet"))
    run([*dvc, "pull"], clone)  # no `dvc checkout` first: with a cold cache it fails before anything is fetched
    status = run([*dvc, "status", "--json"], clone).stdout
    # every output matches dvc.lock; only what is outside DVC on purpose is absent: the landing folder (new files land
    # there) and the pseudonym key's id (written from the key's Airflow connection before anonymise runs)
    assert json.loads(status) == {
        "ingest": [{"changed deps": {"data/landing": "deleted"}}],
        "anonymise": [{"changed deps": {"data/pseudonym_key_id": "deleted"}}],
    }, status
    restored = json.loads((clone / "reports" / "run_summary.json").read_text())
    assert restored["run_id"] == summary["run_id"] and restored["experiment"] == name
    assert json.loads((clone / "registry" / "registry.json").read_text())["champion"] == "v1"
    from feedbackflow.modeling.predict import model_digest

    assert model_digest(clone / "models" / "champion") == summary["champion"]["model_sha256"]
    mapped = run([str(BIN / "feedbackflow"), "experiment", summary["run_id"]], clone).stdout.strip()
    assert mapped == name


def test_second_run_without_new_data_trains_nothing(first_run):
    """... and a labelling server that is down (nothing listens on its port) is recorded, not a failed night."""
    project, _ = first_run
    lock_before = (project / "dvc.lock").read_text()
    # half of last night's batch unsent again, so push has rows to send to the server that is down (with none left it
    # loads no model and contacts no server: tests/unit/test_labelling_loop.py)
    queue = project / "data" / "labelling" / "queue.jsonl"
    sent = queue.read_text(encoding="utf-8").splitlines(keepends=True)
    queue.write_text("".join(sent[: len(sent) // 2]), encoding="utf-8")
    params = (project / "params.yaml").read_text()
    settings = yaml.safe_load(params)
    settings["labelling"]["label_studio_url"] = "http://127.0.0.1:9"  # discard port: no server
    (project / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    try:
        log = _dag_test(project, env={"LABEL_STUDIO_API_KEY": "token-of-a-server-that-is-down"})
    finally:
        (project / "params.yaml").write_text(params)
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    # `changes` found every stage after ingest up to date: their tasks were skipped, never started
    assert "changes: none (every later stage is up to date)" in log
    started = set(re.findall(r"\[DAG TEST\] starting task_id=(\w+)", log))
    assert started.isdisjoint({"validate", "detector", "anonymise", "split", "train", "evaluate", "monitor"}), started
    assert {"ingest", "changes", "summarise", "record"} <= started
    for step in ("pull", "push"):
        assert summary["review"][step]["status"] == "failed", summary["review"]
        assert summary["review"][step]["error"].startswith("SourceUnavailableError: Label Studio at http://127.0.0.1:9")
    assert summary["stages"]["train"] is False
    assert summary["stages"]["evaluate"] is False
    assert summary["ingest"]["new_batches"] == []
    assert (project / "dvc.lock").read_text() == lock_before
    registry = json.loads((project / "registry" / "registry.json").read_text())
    assert [(v["version"], v["status"]) for v in registry["versions"]] == [("v1", "champion")], (
        "the unchanged challenger must not be promoted again"
    )
    # evaluate was skipped: no gate decision this run, and nothing shows last night's as this one's
    assert summary["evaluate"]["ran"] is False and summary["evaluate"]["challenger"] is None
    assert summary["evaluate"]["gate"]["promote"] is None and summary["evaluate"]["gate"]["decision"] == "skipped"
    assert summary["champion"]["version"] == "v1"


def test_manual_run_params_force_training_and_reach_the_summary(first_run):
    """A person's run with force_retrain trains on unchanged data; its reason and Params are in the run summary."""
    project, _ = first_run
    _dag_test(project, {"force_retrain": True, "reason": "after the November feedback campaign"})
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    assert summary["stages"]["ingest"] is False and summary["stages"]["split"] is False
    assert summary["stages"]["train"] is True
    assert summary["trigger"]["reason"] == "after the November feedback campaign"
    assert summary["trigger"]["params"] == {"source": None, "force_retrain": True, "dry_run": False}


def test_dry_run_stops_after_anonymise(first_run):
    project, _ = first_run
    _dag_test(project, {"dry_run": True, "reason": "check a delivery"})
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    assert set(summary["stages"]) == {"ingest", "validate", "detector", "anonymise"}
    assert summary["trigger"]["params"]["dry_run"] is True


def _text_of(path: Path) -> str:
    """A file's text for scanning; Parquet (by suffix or by magic bytes, as in the DVC remote) is decoded first."""
    data = path.read_bytes()
    if path.suffix == ".parquet" or data[:4] == b"PAR1":
        import io

        import pandas as pd

        return "\n".join(pd.read_parquet(io.BytesIO(data)).astype(str).to_numpy().ravel())
    return data.decode("utf-8", errors="ignore")


def _artifacts(project: Path) -> list[Path]:
    """Everything that may legitimately leave the restricted area after a run, plus every log of the run."""
    roots = [project / "data" / name for name in ("anonymised", "split", "labelling")]  # labelling: sent to reviewers
    roots += [project / name for name in ("models", "reports", "registry")]
    roots += [project / "storage" / "dvc-general", project.parent / "airflow" / "logs"]
    files = [path for root in roots if root.exists() for path in root.rglob("*") if path.is_file()]
    tracked = [*project.glob("*.dvc"), *(project / "models").glob("*.dvc")]  # the .dvc folder itself is no file
    return [*files, project / "dvc.lock", *(path for path in tracked if path.is_file())]


def test_no_planted_personal_data_in_any_artifact_or_log(first_run):
    project, log = first_run
    canaries = json.loads((project / "data" / "demo_canaries.json").read_text())
    planted = [value for values in canaries.values() for value in values]
    assert planted, "the generator planted no personal data"
    files = _artifacts(project)
    required_roots = ("data/anonymised", "data/split", "data/labelling", "models/challenger", "reports/anonymise")
    for required in (*required_roots, "storage/dvc-general"):
        assert any(path.is_relative_to(project / required) for path in files), f"nothing scanned under {required}"
    assert any(path.name == "audit.json" for path in files) and any(path.suffix == ".html" for path in files)
    corpus = "\n".join(_text_of(path) for path in files) + log
    leaks = [value for value in planted if value.casefold() in corpus.casefold()]
    assert leaks == [], f"{len(leaks)} planted values found downstream of anonymise"
    assert PSEUDONYM_KEY not in corpus, "the pseudonym key reached an artifact or a log"
    raw = "\n".join(_text_of(path) for path in (project / "data" / "raw").glob("*.csv"))
    # The generator's dirt blanks a few rows after planting, and with them their planted values; every other value
    # must still be in the raw data (the restricted remote keeps the original text).
    kept = [value for value in planted if value in raw]
    assert len(kept) >= 0.95 * len(planted), "raw data must keep the original text (restricted remote)"


def test_pseudonyms_come_from_the_connection_key_and_the_audit_names_only_its_id(first_run):
    from feedbackflow.privacy.pseudonym import PseudonymKey, pseudonym

    project, _ = first_run
    key = PseudonymKey(PSEUDONYM_KEY.encode())
    canaries = json.loads((project / "data" / "demo_canaries.json").read_text())
    anonymised = "\n".join(_text_of(part) for part in partitions.part_files(project / "data" / "anonymised"))
    # Each planted e-mail that reached the anonymised data (valid rows) is there as its keyed token.
    tokens = [pseudonym(key, "EMAIL_ADDRESS", value) for value in canaries["EMAIL_ADDRESS"]]
    assert sum(token in anonymised for token in tokens) >= len(tokens) // 2
    assert "<CREDIT_CARD>" in anonymised or "<PHONE_NUMBER>" in anonymised  # placeholders where configured
    audit = json.loads((project / "reports" / "anonymise" / "audit.json").read_text())
    assert audit["key_id"] == key.key_id
    assert audit["operators"]["PERSON"] == "pseudonym" and audit["operators"]["URL"] == "placeholder"
    assert_no_planted_value_missed(audit["leak_gate"])
    assert audit["leak_gate"]["canaries_checked"] == sum(len(values) for values in canaries.values())


def test_rotated_key_in_the_connection_re_runs_anonymise_and_everything_after(first_run):
    """Same data, same params, a new key in the Airflow connection: DVC must not restore the old key's output."""
    from feedbackflow.privacy.pseudonym import KEY_ID_FILE, PseudonymKey

    project, _ = first_run
    old_audit = json.loads((project / "reports" / "anonymise" / "audit.json").read_text())
    rotated = "e2e-rotated-key-0b7d41c9e2a85f36"
    env = {
        **airflow_env(project, project.parent / "airflow"),
        "AIRFLOW_CONN_FEEDBACKFLOW_PSEUDONYM": json.dumps({"conn_type": "generic", "password": rotated}),
    }
    done = run([str(BIN / "airflow"), "dags", "test", "nightly_retrain"], project, env)
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    assert summary["stages"]["anonymise"] is True, "a rotated key must re-run anonymise (not restore from cache)"
    assert summary["stages"]["split"] is True
    audit = json.loads((project / "reports" / "anonymise" / "audit.json").read_text())
    new_id = PseudonymKey(rotated.encode()).key_id
    assert audit["key_id"] == new_id != old_audit["key_id"]
    assert (project / KEY_ID_FILE).read_text().strip() == new_id
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert any(dep["path"] == KEY_ID_FILE for dep in lock["stages"]["anonymise"]["deps"])
    assert rotated not in done.stdout + done.stderr + (project / "dvc.lock").read_text()
