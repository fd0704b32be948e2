"""One table of per-stage rules: what an orchestrator task does around ``dvc repro`` of each ``dvc.yaml`` stage.

No task body branches on stage names: a stage's credentials, its work before the stage (state DVC cannot pull by
itself), its part in a dry run, the Param that forces it, whether it must always run, whether it needs a GPU and how
many shards share its work are columns here. A test
asserts that the table names exactly the stages of ``dvc.yaml``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from feedbackflow.config import ProjectPaths
from feedbackflow.settings import Settings
from feedbackflow.storage.dvc import Dvc

log = logging.getLogger(__name__)

#: work a stage's task does on its worker before ``dvc repro``: (paths, the stage's environment) -> None
Before = Callable[[ProjectPaths, dict[str, str]], None]


def sync_champion(paths: ProjectPaths, env: dict[str, str]) -> None:
    """Take the champion from the shared registry (pointer + files pulled by hash): every worker sees the same one."""
    from feedbackflow.storage.registry import sync_champion as sync

    entry = sync(paths, Dvc(paths.root, env))
    log.info("champion from the shared registry: %s", entry["version"] if entry else "none yet")


def fetch_champion_data(paths: ProjectPaths, env: dict[str, str]) -> None:
    """The champion's training data into the DVC cache by hash (monitor's drift reference; run after the sync)."""
    from feedbackflow.storage.registry import fetch_champion_data as fetch

    if fetch(paths, Dvc(paths.root, env)):
        log.info("champion's training data fetched by hash")


def train_start(paths: ProjectPaths, env: dict[str, str]) -> None:
    """Write what train starts from, its dependency: the base model, or with ``train.window.warm_start`` the
    champion synced from the shared registry. A promotion re-runs train only when train starts from the champion."""
    from feedbackflow.io import read_json, write_json
    from feedbackflow.settings import load_settings
    from feedbackflow.storage.registry import read_pointer

    start: dict[str, object] = {"warm_start": False}
    if load_settings(paths.params).train.window.warm_start:
        sync_champion(paths, env)
        champion = read_pointer(paths)
        start = {"warm_start": True, "champion": champion.get("version"), "model_md5": champion.get("model_md5")}
    if read_json(paths.train_start, None) != start:  # rewritten only when it changes
        write_json(paths.train_start, start)


def write_key_id(paths: ProjectPaths, env: dict[str, str]) -> None:
    """The pseudonym key's id (never the key), a dvc.yaml dependency: a rotated key re-runs anonymise."""
    import os

    from feedbackflow.privacy.pseudonym import write_key_id as write

    write(paths.root, {**os.environ, **env})


def _source_not_hashable(settings: Settings) -> bool:
    """Ingest from S3 or PostgreSQL must run every time: DVC cannot hash those sources (the manifest makes it safe)."""
    return settings.ingest.source != "folder"


@dataclass(frozen=True)
class StageRule:
    """What the task of one stage does besides ``dvc repro``."""

    connections: tuple[str, ...] = ("aws",)  # kinds of connections.CONNECTIONS whose credentials the stage gets
    before: Before | None = None
    # work only the stage's own task does, after `before`: data the stage reads that no dependency names (the
    # `changes` check runs `before` alone: it needs what DVC hashes, not the data)
    fetch: Before | None = None
    in_dry_run: bool = False  # a dry run (Param ``dry_run``) runs the stage; the others are skipped
    takes_source: bool = False  # the Param ``source`` overrides params.yaml's ingest source (and forces the stage)
    forced_by: str | None = None  # a boolean Param that forces the stage to run although its inputs did not change
    always_runs: Callable[[Settings], bool] | None = None
    gpu: bool = False  # runs on GPU workers: dag.train_queue and a slot of dag.train_pool per GPU, its own timeout
    shards: Callable[[Settings], int] | None = None  # above 1: mapped `<stage>_shard` tasks share its work first

    def shard_count(self, settings: Settings) -> int:
        """How many mapped shard tasks share the stage's work first (1: none, the stage alone)."""
        return self.shards(settings) if self.shards else 1


STAGE_RULES: dict[str, StageRule] = {
    "ingest": StageRule(
        connections=("aws", "postgres"), in_dry_run=True, takes_source=True, always_runs=_source_not_hashable
    ),
    "validate": StageRule(in_dry_run=True),
    "detector": StageRule(in_dry_run=True),  # skipped by DVC unless its corpora, code or params changed
    "anonymise": StageRule(
        connections=("aws", "pseudonym_key"),
        in_dry_run=True,
        before=write_key_id,
        shards=lambda settings: settings.dag.anonymise_shards,
    ),
    "split": StageRule(),
    # with train.window.warm_start the champion is train's start (registry/train_start.json, one of its deps)
    "train": StageRule(forced_by="force_retrain", gpu=True, before=train_start),
    "evaluate": StageRule(before=sync_champion),
    # drift against the shared registry's champion and its training data
    "monitor": StageRule(before=sync_champion, fetch=fetch_champion_data),
}
