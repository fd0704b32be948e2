"""An S3 DVC remote is configuration only: the stage runner pushes to an S3-compatible endpoint over HTTP.

The endpoint is moto's standalone server on loopback (MinIO in docker/); credentials come from the environment, as
they would from an Airflow connection (see ``feedbackflow.orchestration.connections.aws_environment``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from feedbackflow.orchestration.runner import run_stage

pytestmark = pytest.mark.integration

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_endpoint(monkeypatch):
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_runner_pushes_stage_outputs_to_an_s3_remote(tmp_path, s3_endpoint):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **{k.lower(): v for k, v in CREDENTIALS.items() if "KEY" in k})
    s3.create_bucket(Bucket="feedbackflow-dvc")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: python -c \"open('out.txt', 'w').write('hello s3')\"\n    outs:\n      - out.txt\n"
    )
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "remote", "add", "-d", "general", "s3://feedbackflow-dvc/store"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "remote", "modify", "general", "endpointurl", s3_endpoint], cwd=tmp_path, check=True)

    result = run_stage("make", root=str(tmp_path), env=CREDENTIALS)

    assert result["ran"] is True
    md5 = result["lock"]["outs"][0]["md5"]
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="feedbackflow-dvc")["Contents"]]
    assert any(key.endswith(md5[2:]) for key in keys), keys
    again = run_stage("make", root=str(tmp_path), env=CREDENTIALS)
    assert again["ran"] is False


def test_both_remotes_on_one_s3_endpoint_keep_restricted_data_in_their_own_bucket(tmp_path, s3_endpoint):
    """`feedbackflow remotes` sets the endpoint on both remotes; restricted outputs never reach the general bucket."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **{k.lower(): v for k, v in CREDENTIALS.items() if "KEY" in k})
    for bucket in ("ff-general", "ff-restricted"):
        s3.create_bucket(Bucket=bucket)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  make:\n"
        "    cmd: python -c \"open('raw.txt', 'w').write('Jane Roe'); open('anon.txt', 'w').write('<PERSON>')\"\n"
        "    outs:\n      - raw.txt:\n          remote: restricted\n      - anon.txt\n"
    )
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "remote", "add", "-d", "general", "../storage/dvc-general"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "remote", "add", "restricted", "../storage/dvc-restricted"], cwd=tmp_path, check=True)
    feedbackflow = str(Path(sys.executable).parent / "feedbackflow")
    configure = [feedbackflow, "remotes", "--general", "s3://ff-general/store", "--restricted", "s3://ff-restricted/s"]
    done = subprocess.run(
        [*configure, "--endpoint-url", s3_endpoint],
        cwd=tmp_path,
        env={**os.environ, "FEEDBACKFLOW_PROJECT_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    result = run_stage("make", root=str(tmp_path), env=CREDENTIALS)

    hashes = {out["path"]: out["md5"] for out in result["lock"]["outs"]}

    def stored(bucket: str) -> set[str]:
        return {"".join(item["Key"].split("/")[-2:]) for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}

    assert hashes["raw.txt"] in stored("ff-restricted")
    assert hashes["raw.txt"] not in stored("ff-general"), "restricted data reached the general bucket"
    assert hashes["anon.txt"] in stored("ff-general")
    assert not (tmp_path.parent / "storage").exists(), "a remote still pointed at the local folder"

    same_bucket = subprocess.run(
        [feedbackflow, "remotes", "--general", "s3://one/a", "--restricted", "s3://one/b"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert same_bucket.returncode == 78 and "separate bucket" in same_bucket.stderr
