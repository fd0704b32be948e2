"""Forgetting a customer: two nights of data in Git + DVC, a local restricted remote and a versioned S3 remote (moto).

The subject is planted in both nights, written a different way each time (e-mail case, phone format, an id with a
space, the name in capitals) in raw batches, the quarantine, held-back rows, and (by id only, as pseudonyms) in the
anonymised and split rows. After ``forget``: no workspace file, cache object, remote object or S3 object version
holds them, the newest versions are in dvc.lock and the remotes, the registry marks the model trained on them, the
certificate holds no identifier, restoring night 1 names the request instead of failing on a missing cache file, and
a second request for the same subject finds nothing and says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from feedbackflow.config import ProjectPaths
from feedbackflow.governance.erasure import ErasureIncompleteError, ErasureRequest, forget
from feedbackflow.governance.erasure_restore import ErasedVersionError, restore
from feedbackflow.governance.erasure_store import S3Objects, open_stores
from feedbackflow.settings import load_settings
from feedbackflow.storage.registry import Registry
from tests.helpers import write_params
from tests.servers import loopback_s3, s3_client, s3_endpoint  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

KEY = "erasure-test-key-6b1d0c8e2f"
IDENTIFIERS = {
    "email": ["Jane.Roe@Example.com"],
    "phone": ["+44 7700 900123"],
    "customer_id": ["ACC-0042"],
    "name": ["Jane Roe"],
}
#: Every way the subject is written in the data; none may appear in the certificate, the log or the list.
WRITTEN = ["jane.roe@example.com", "7700900123", "07700 900 123", "acc-0042", "acc 0042", "jane roe", "roe"]
STAGES = """stages:
  ingest:
    cmd: echo ingest
    outs: [{data/raw: {persist: true, remote: restricted}}]
  validate:
    cmd: echo validate
    deps: [data/raw]
    outs: [{data/validated: {remote: restricted}}, {data/quarantine: {remote: restricted}}]
  anonymise:
    cmd: echo anonymise
    deps: [data/validated]
    outs: [data/anonymised, {data/held_back: {remote: restricted}}]
  split:
    cmd: echo split
    deps: [data/anonymised]
    outs: [data/split]
"""


def _night(root: Path, night: int, rows: list[tuple[str, str, str]]) -> None:
    """Write night ``night``'s raw batch and rebuild every derived dataset from all nights (by hand, like the stages).

    ``rows``: (id, text, where) with where one of validated, quarantine, held_back.
    """
    raw = root / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([{"id": i, "text": t, "label": "billing", "channel": "app"} for i, t, _ in rows])
    frame.to_csv(raw / f"night{night}.csv", index=False)
    entry = {"batch_id": f"b{night}", "sequence": night, "source": "folder", "key": f"n{night}.csv", "size": 1}
    entry |= {"sha256": f"{night:064d}", "raw_file": f"night{night}.csv"}
    with open(raw / "_manifest.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
    every = json.loads((root / "rows.json").read_text()) if (root / "rows.json").exists() else []
    every += rows
    (root / "rows.json").write_text(json.dumps(every))
    for where in ("validated", "quarantine", "held_back"):
        chosen = [{"id": i, "text": t, "label": "billing"} for i, t, w in every if w == where]
        (root / "data" / where).mkdir(parents=True, exist_ok=True)
        pd.DataFrame(chosen, columns=["id", "text", "label"]).to_parquet(root / "data" / where / f"{where}.parquet")
    anonymised = pd.DataFrame([{"id": i, "text": f"<PERSON_{i:0>8}> wrote", "label": "billing"} for i, _, w in every])
    (root / "data" / "anonymised").mkdir(exist_ok=True)
    anonymised.to_parquet(root / "data" / "anonymised" / "feedback.parquet")
    (root / "data" / "split").mkdir(exist_ok=True)
    anonymised.iloc[::2].to_parquet(root / "data" / "split" / "train.parquet")
    anonymised.iloc[1::2].to_parquet(root / "data" / "split" / "test.parquet")


def _sh(root: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _commit(root: Path, message: str) -> dict[str, str]:
    dvc = (sys.executable, "-m", "dvc")
    _sh(root, *dvc, "commit", "--force", "ingest", "validate", "anonymise", "split")
    _sh(root, *dvc, "push")
    _sh(root, "git", "add", "-A")
    _sh(root, "git", "commit", "-qm", message)
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage["outs"]}


def _project(tmp_path: Path, endpoint: str, monkeypatch) -> tuple[Path, object]:
    root = tmp_path / "project"
    root.mkdir()
    write_params(root)
    (root / "dvc.yaml").write_text(STAGES)
    s3 = s3_client(endpoint)
    s3.create_bucket(Bucket="ff-general")
    s3.put_bucket_versioning(Bucket="ff-general", VersioningConfiguration={"Status": "Enabled"})
    dvc = (sys.executable, "-m", "dvc")
    _sh(root, "git", "init", "-q")
    _sh(root, "git", "config", "user.email", "t@example.org")
    _sh(root, "git", "config", "user.name", "t")
    _sh(root, *dvc, "init", "-q")
    _sh(root, *dvc, "remote", "add", "-d", "general", "s3://ff-general/dvc")
    _sh(root, *dvc, "remote", "modify", "--local", "general", "endpointurl", endpoint)
    _sh(root, *dvc, "remote", "add", "restricted", str(tmp_path / "restricted"))
    monkeypatch.setenv("FEEDBACKFLOW_ERASURE_KEY", KEY)
    return root, s3


@pytest.fixture
def project(tmp_path, s3_endpoint, monkeypatch):  # noqa: F811
    return _project(tmp_path, s3_endpoint, monkeypatch)


def _plant(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    _night(
        root,
        1,
        [
            ("1", "card declined again", "validated"),
            ("2", "this is JANE.ROE@example.com, refund me", "validated"),
            ("3", "call me on 07700 900 123", "quarantine"),
            ("4", "account acc 0042 was charged twice", "held_back"),
            ("5", "app is slow", "validated"),
        ],
    )
    night1 = _commit(root, "night 1")
    _night(root, 2, [("6", "Jane ROE here, fees again", "validated"), ("7", "thanks for the help", "validated")])
    night2 = _commit(root, "night 2")
    return night1, night2


def test_forget_removes_every_copy_and_certifies_without_identifiers(project):
    root, s3 = project
    night1, night2 = _plant(root)
    paths = ProjectPaths(root)
    # a re-upload of night 1's split gives the S3 object a second version
    key = f"dvc/files/md5/{night1['data/split'][:2]}/{night1['data/split'][2:]}"
    s3.put_object(Bucket="ff-general", Key=key, Body=s3.get_object(Bucket="ff-general", Key=key)["Body"].read())
    registry = Registry.open(root)
    version = {"version": "v1", "status": "champion", "model_sha256": "m", "model_md5": "0" * 32 + ".dir"}
    registry.update(lambda s: {**s, "champion": "v1", "versions": [{**version, "data_versions": night1}]})

    settings = load_settings(root / "params.yaml")
    certificate = forget(paths, settings, ErasureRequest("REQ-7", IDENTIFIERS, "dpo@example.org"))

    assert certificate["state"] == "done", certificate
    assert certificate["rows_removed"] == {
        "raw": 4,
        "validate_parts": 0,  # this project never ran validate: no batch parts
        "validated": 2,
        "quarantine": 1,
        "held_back": 1,
        "anonymised": 4,
        "split": 4,
    }
    # validate.min_rows_per_label is 5: erasing still happens, and the certificate says what training lacks
    assert certificate["labels_below_minimum"] == {"billing": 3}
    assert certificate["verification"]["found"] == 0 and certificate["verification"]["objects_checked"] > 5
    deleted = certificate["objects_deleted"]
    assert deleted["cache"]["objects"] and deleted["restricted"]["objects"] and deleted["general"]["objects"]
    assert night1["data/split"] in deleted["general"]["objects"]
    assert deleted["general"]["versions"] > len(deleted["general"]["objects"]), "the second version stayed"
    versions = s3.list_object_versions(Bucket="ff-general", Prefix="dvc/files/md5/")
    left = {item["Key"] for item in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]}
    assert key not in left

    # the newest versions are committed, pushed and hold every other row
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    current = {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage["outs"]}
    assert current["data/split"] not in (night1["data/split"], night2["data/split"])
    assert {md5 for md5 in current.values()} <= {md5 for store in open_stores(root) for md5 in store.hashes()}
    kept = pd.read_parquet(root / "data" / "anonymised" / "feedback.parquet")
    assert sorted(kept["id"]) == ["1", "5", "7"] or sorted(kept["id"].astype(str)) == ["1", "5", "7"]
    manifest = [json.loads(line) for line in (root / "data/raw/_manifest.jsonl").read_text().splitlines()]
    assert [entry["erasures"][0]["rows_removed"] for entry in manifest] == [3, 1]

    # the registry marks the model; the certificate, the HTML, the log and the list hold no identifier
    marked = Registry.open(root).head()["versions"][0]
    assert marked["erasures"][0]["request_id"] == "REQ-7" and "retire_after" in marked["erasures"][0]
    assert certificate["models"]["versions"] == ["v1"]
    records = root / settings.erasure.records_dir
    for path in [*records.iterdir(), root / settings.erasure.subjects_file]:
        text = path.read_text(encoding="utf-8").casefold()
        assert not [value for value in WRITTEN if value in text], path

    with pytest.raises(ErasedVersionError, match=r"REQ-7 of 20\d\d-"):
        restore(paths, records, "HEAD~1")

    # an identifier that matches nothing (any more) still gets a certificate, saying so
    again = forget(paths, settings, ErasureRequest("REQ-8", {"email": ["jane.roe@example.com"]}, "dpo"))
    assert again["state"] == "done" and again["matched"] is False
    assert not any(store["objects"] for store in again["objects_deleted"].values())


def test_a_remote_down_mid_erasure_leaves_it_incomplete_and_a_rerun_completes_it(
    tmp_path,
    loopback_s3,  # noqa: F811
    monkeypatch,
):
    """The S3 remote goes away after the first S3 object is deleted: the request fails as incomplete, its certificate
    names the steps and objects left, and the same request run again once S3 is back deletes them and verifies."""
    root, s3 = _project(tmp_path, loopback_s3.url, monkeypatch)
    night1, _ = _plant(root)
    paths, settings = ProjectPaths(root), load_settings(root / "params.yaml")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # connection refused at once, not after botocore's back-off
    delete = S3Objects.delete

    def delete_then_go_down(store: S3Objects, md5: str) -> int:
        removed = delete(store, md5)
        loopback_s3.stop()
        return removed

    monkeypatch.setattr(S3Objects, "delete", delete_then_go_down)
    request = ErasureRequest("REQ-9", IDENTIFIERS, "dpo@example.org")

    with pytest.raises(ErasureIncompleteError, match=r"REQ-9 is incomplete .*steps left: delete, verify"):
        forget(paths, settings, request)

    records = root / settings.erasure.records_dir
    first = json.loads((records / "REQ-9.json").read_text(encoding="utf-8"))
    assert first["state"] == "incomplete" and first["completed_at"] is None
    assert first["left"] == ["delete", "verify"] and first["verification"] == {}
    assert len(first["objects_deleted"]["general"]["objects"]) == 1, "one S3 object went before the outage"
    assert first["objects_left"]["general"] and first["objects_left"]["restricted"]
    assert "incomplete" in (records / "REQ-9.html").read_text(encoding="utf-8")
    assert not (records / "log.jsonl").exists(), "an incomplete request is not in the log of completed ones"

    monkeypatch.setattr(S3Objects, "delete", delete)
    loopback_s3.start()
    again = forget(paths, settings, request)

    assert again["state"] == "done" and again["resumed"] is True and again["left"] == []
    assert again["verification"]["found"] == 0 and again["objects_left"] == {}
    assert again["rows_removed"] == first["rows_removed"], "the counts of the first attempt are kept"
    assert set(first["objects_deleted"]["general"]["objects"]) < set(again["objects_deleted"]["general"]["objects"])
    assert night1["data/split"] in again["objects_deleted"]["general"]["objects"]
    versions = s3.list_object_versions(Bucket="ff-general", Prefix="dvc/files/md5/")
    left = {item["Key"].split("md5/")[1].replace("/", "") for item in [*versions.get("Versions", [])]}
    assert not left & set(again["objects_deleted"]["general"]["objects"])
