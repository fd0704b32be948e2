"""A large night's heaviest stage spread over the workers: Airflow maps one task per shard (``dag.anonymise_shards``).

Each mapped ``anonymise_shard`` task runs on whichever Celery worker takes it: it pulls the stage's inputs and last
outputs by hash (the same plan as the stage), runs ``feedbackflow anonymise-shard`` for its share of the new
batches, and hands its parts over through the DVC remotes (``dvc add`` + ``dvc push``: the output parts to the
general remote like the stage's own, the held-back parts and the shard's index to the restricted one). Its XCom is the
two ``.dvc`` records, never data. The ``anonymise`` stage task then
pulls every shard by that record (:func:`restore_shards`) and takes the parts made under the batches' identities: the
outputs are those of one worker, and a fresh worker with an empty disk gets the same.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import yaml

from feedbackflow.config import ProjectPaths
from feedbackflow.orchestration.connections import connection_environment
from feedbackflow.orchestration.rules import STAGE_RULES
from feedbackflow.orchestration.runner import fail_without_retry, merge_upstream, pull_inputs, stage_message
from feedbackflow.privacy import incremental
from feedbackflow.settings import load_settings
from feedbackflow.storage.dvc import Dvc, DvcError

log = logging.getLogger(__name__)

#: the remote each part of a shard's folder travels through: output parts as anonymise's own (the default remote),
#: held-back rows and row ids as personal data
SHARD_REMOTES = {incremental.SHARD_PARTS: None, incremental.SHARD_RESTRICTED: "restricted"}
#: the key of a shard task's result that carries its ``.dvc`` records (path, remote and content)
SHARD_RECORD = "shard_dvc"


def shard_task(stage: str, shard: int, upstream: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    """Run shard ``shard`` (from 0) of ``stage`` on this worker and push its parts; return their ``.dvc`` record."""
    paths = ProjectPaths.discover()
    settings = load_settings(paths.params)
    rule = STAGE_RULES[stage]
    shards = rule.shard_count(settings)
    env = connection_environment(rule.connections)
    with fail_without_retry():
        if rule.before:
            rule.before(paths, env)
        dvc = Dvc(paths.root, env)
        locks = merge_upstream(upstream)
        dvc.merge_lock(locks)
        pull_inputs(dvc, paths, stage, locks)  # its inputs and the stage's last parts: it plans as the stage will
        _run_shard(paths, dvc.env, stage, shard, shards)
        folder = paths.anonymise_shard(shard, shards).relative_to(paths.root).as_posix()
        records = []
        for name, remote in SHARD_REMOTES.items():
            dvc("add", f"{folder}/{name}")
            dvc("push", *(["-r", remote] if remote else []), f"{folder}/{name}.dvc")
            content = yaml.safe_load((paths.root / f"{folder}/{name}.dvc").read_text(encoding="utf-8"))
            records.append({"path": f"{folder}/{name}.dvc", "remote": remote, "content": content})
    log.info("%s shard %d of %d pushed to the remotes", stage, shard + 1, shards)
    return {"stage": f"{stage}_shard", "shard": shard, SHARD_RECORD: records}


def _run_shard(paths: ProjectPaths, env: dict[str, str], stage: str, shard: int, shards: int) -> None:
    """``feedbackflow <stage>-shard`` in its own process (its models stay out of the task's); its log streams here."""
    command = [sys.executable, "-m", "feedbackflow", f"{stage}-shard", "--shard", str(shard + 1), "--of", str(shards)]
    done = subprocess.run(command, cwd=paths.root, env=env, capture_output=True, text=True, check=False)
    for line in done.stderr.splitlines():
        log.info("%s", line)
    if done.returncode:
        output = done.stdout + done.stderr
        message = stage_message(f"{stage}-shard", output) or (output.strip().splitlines() or ["no output"])[-1]
        raise DvcError(f"{stage} shard {shard + 1} of {shards}: {message}", exit_code=done.returncode, output=output)


def restore_shards(paths: ProjectPaths, env: dict[str, str], upstream: Iterable[Any]) -> None:
    """Pull every shard named in ``upstream`` (its ``.dvc`` records) into this workspace."""
    dvc = Dvc(paths.root, env)
    for result in upstream:
        for record in ((result or {}).get(SHARD_RECORD) or []) if isinstance(result, dict) else []:
            target = paths.root / record["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump(record["content"], sort_keys=False), encoding="utf-8")
            dvc("pull", *(["-r", record["remote"]] if record["remote"] else []), record["path"])
