"""Two nights with a real Label Studio server on loopback (``make test-label-studio``; not part of ``make test``: the
server's first start migrates its database for about two minutes on a 2-core machine).

Night 1 ingests unlabelled feedback and ``feedbackflow label push`` sends the review batch to a project it creates
with the taxonomy as choices; a scripted annotator answers every task through the REST API with the held-back true
label; night 2 pulls the labels, ingests and validates them, and the split the next training reads holds them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests

from feedbackflow.config import ProjectPaths
from feedbackflow.labelling import loop, store
from feedbackflow.labelling.studio import API_KEY_ENV, LabelStudio
from feedbackflow.stages import split
from tests.unit.test_labelling_loop import CREATED, LABELS, TEMPLATES, _champion, _deliver, _night

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / ".venv-label-studio" / "bin" / "label-studio"
TOKEN = "feedbackflow0test0token0000000000000000a"
URL_ENV = "FEEDBACKFLOW_LABEL_STUDIO_TEST_URL"  # a server already running with TOKEN (to iterate on the test)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    assert SERVER.is_file(), f"{SERVER} missing: run `make label-studio-venv` first"
    port, data = _free_port(), tmp_path_factory.mktemp("label-studio")
    command = [
        str(SERVER),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "-p",
        str(port),
        "--data-dir",
        str(data),
        "--username",
        "reviewer@example.com",
        "--password",
        "review-pass-123",
        "--user-token",
        TOKEN,
        "--enable-legacy-api-token",
    ]
    log = (data / "server.log").open("w")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(2)
        assert process.poll() is None, f"Label Studio exited: see {data / 'server.log'}"
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def _annotate(url: str, truth: dict[str, str]) -> int:
    """The scripted annotator: every task of the project answered with the true label, through the REST API."""
    client = LabelStudio(url, TOKEN)
    project = client.project("feedbackflow review", [])
    tasks = client._call("GET", "/api/tasks", params={"project": project, "page_size": 1000})["tasks"]
    for task in tasks:
        answer = truth[task["data"]["feedback_id"]]
        result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [answer]}}]
        client._call("POST", f"/api/tasks/{task['id']}/annotations", json={"result": result})
    return len(tasks)


def test_two_nights_through_a_label_studio_server(server: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, TOKEN)
    paths = ProjectPaths(tmp_path / "project")
    paths.root.mkdir()
    (paths.root / "labels.json").write_text(pd.Series(LABELS).to_json(orient="values"), encoding="utf-8")
    from tests.helpers import params_settings

    settings = params_settings(
        ingest={"landing_dir": "landing", "settle_seconds": 0},
        validate={"taxonomy": "labels.json", "min_rows_per_label": 0, "max_quarantine_share": 0.5},
        labelling={"budget": 8, "label_studio_url": server},
    )
    phrases = [(label, phrase) for label in LABELS for phrase in TEMPLATES[label]]
    truth = {f"f{n}": phrases[n % 12][0] for n in range(16)}
    truth["f15"] = "out of scope"
    rows = [[key, f"{phrases[int(key[1:]) % 12][1]} (ticket {key})", "", "web", CREATED] for key in truth]
    rows[-1][1] = "what is the weather like on mars"
    _deliver(paths, "night1.csv", rows)
    _night(settings, paths)
    _champion(paths, [row[1] for row in rows])

    pushed = loop.push(settings, paths)  # night 1: the project is created and the batch sent
    assert pushed["sent"] == 8 and pushed["destination"].startswith(server)
    assert _annotate(server, truth) == 8

    pulled = loop.pull(settings, paths)  # night 2: labels back as a delivery, then ingest and validate
    assert pulled["labelled"] == 8 and pulled["disputed"] == 0
    validated = _night(settings, paths).set_index("id")["label"]
    sent = [row["id"] for row in store.read_lines(paths.review_queue)]
    expected = {key: "oos" if truth[key] == "out of scope" else truth[key] for key in sent}
    assert validated[sent].to_dict() == expected

    split.run(settings, paths)  # what the next training reads
    parts = pd.concat(pd.read_parquet(paths.split / f"{name}.parquet") for name in ("train", "validation", "test"))
    assert parts.set_index("id").loc[sent, "label"].to_dict() == expected
