"""A thin wrapper around the ``dvc`` command line, run in the project root."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from feedbackflow.credentials import redact, secret_values
from feedbackflow.errors import FeedbackflowError
from feedbackflow.io import file_digest

log = logging.getLogger(__name__)


class DvcError(FeedbackflowError):
    """A DVC command failed; ``exit_code`` carries the failing stage command's own code when there is one.

    ``output`` is DVC's whole combined output (the stage command's included), for callers that pick out the stage's
    own message.
    """

    def __init__(self, message: str, exit_code: int = 1, output: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.output = output


#: Sub-commands that move data to or from a remote: safe to repeat, so retried when the remote is unreachable.
TRANSFER_COMMANDS = frozenset({"push", "pull", "fetch"})
#: Waits between tries of a transfer (each try itself takes DVC about 15 s to give up): rides out a ~2 min outage.
TRANSFER_RETRY_DELAYS = (5.0, 10.0, 20.0, 30.0)
#: DVC output that means the remote could not be reached (a network fault), not a configuration problem.
NETWORK_ERROR = re.compile(
    r"Could not connect to the endpoint URL|Connection (?:refused|reset|was closed|aborted)|Connect timeout|"
    r"Read timeout|Temporary failure in name resolution|Service ?Unavailable|SlowDown",
    re.IGNORECASE,
)


class Dvc:
    """Runs ``dvc`` sub-commands in ``root`` with the project's virtual environment on ``PATH``.

    ``push``, ``pull`` and ``fetch`` are retried after ``transfer_retry_delays`` when their output shows that the
    remote could not be reached; any other failure is raised at once.
    """

    def __init__(
        self,
        root: Path,
        env: Mapping[str, str] | None = None,
        transfer_retry_delays: tuple[float, ...] = TRANSFER_RETRY_DELAYS,
    ) -> None:
        self.root = root
        self.transfer_retry_delays = transfer_retry_delays
        bin_dir = str(Path(sys.executable).parent)
        self.env = {**os.environ, **(env or {})}
        self.env["PATH"] = os.pathsep.join([bin_dir, self.env.get("PATH", "")])
        # credentials DVC and the stage receive; removed from every line logged or put into a DvcError
        self._secrets = secret_values(self.env)

    def __call__(self, *args: str) -> str:
        """Run ``dvc --wait-for-lock <args>`` and return its combined output (transfers retried, see the class).

        Raises:
            DvcError: DVC exited non-zero (for a transfer: on every try); the message holds the end of its output.
        """
        delays = self.transfer_retry_delays if args and args[0] in TRANSFER_COMMANDS else ()
        for attempt, delay in enumerate(delays):
            try:
                return self._once(*args)
            except DvcError as error:
                network = NETWORK_ERROR.search(str(error))
                if network is None:
                    raise
                log.warning(
                    "dvc %s: the remote is unreachable (%s); try %d of %d in %.0f s",
                    args[0],
                    network.group(0),
                    attempt + 2,
                    len(delays) + 1,
                    delay,
                )
                time.sleep(delay)
        return self._once(*args)

    def _once(self, *args: str) -> str:
        """Run ``dvc --wait-for-lock <args>`` once and return its combined output.

        Raises:
            DvcError: DVC exited non-zero; the message holds the end of its output.
        """
        command = [sys.executable, "-m", "dvc", "--wait-for-lock", *args]
        log.info("$ dvc %s", " ".join(args))
        # stream the output line by line so long stages (train) show progress in the task log as they run
        process = subprocess.Popen(
            command, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            line = redact(line.rstrip(), self._secrets)
            lines.append(line)
            if line.strip():
                log.info("%s", line)
        returncode = process.wait()
        output = "\n".join(lines)
        if returncode != 0:
            stage_code = re.search(r"exited with (\d+)", output)
            code = int(stage_code.group(1)) if stage_code else returncode
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise DvcError(f"dvc {' '.join(args)} failed (exit {code}):\n{tail}", exit_code=code, output=output)
        return output

    def lock(self) -> dict[str, Any]:
        """The parsed ``dvc.lock`` (empty when no stage ran yet)."""
        path = self.root / "dvc.lock"
        if not path.exists():
            return {"schema": "2.0", "stages": {}}
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {"schema": "2.0", "stages": {}}

    def to_pull(self, targets: Iterable[str]) -> list[str]:
        """The ``targets`` a ``dvc pull`` would change: outputs in ``dvc.lock`` that are not in the workspace as
        recorded. A single file whose size and MD5 (DVC 3's hash of the raw bytes) equal the lock's is left out, so
        a worker that already holds tonight's reports starts no DVC process for them; a directory output is always
        kept (DVC checks its files against its own hash state)."""
        outs = {out["path"]: out for stage in self.lock().get("stages", {}).values() for out in stage.get("outs", [])}
        wanted = [target for target in targets if target in outs]
        return [target for target in wanted if not _file_as_recorded(self.root / target, outs[target])]

    def merge_lock(self, entries: Mapping[str, Any]) -> None:
        """Write other workers' lock entries (stage name -> entry) into the local ``dvc.lock``.

        This is how a task on a fresh machine learns the exact hashes its upstream stages produced; the data itself
        then comes from the remote by those hashes.
        """
        if not entries:
            return
        lock = self.lock()
        stages = lock.setdefault("stages", {})
        if all(stages.get(name) == entry for name, entry in entries.items()):
            return
        stages.update(entries)
        write_atomic(self.root / "dvc.lock", yaml.safe_dump(lock, sort_keys=False))


def _file_as_recorded(path: Path, out: Mapping[str, Any]) -> bool:
    md5 = str(out.get("md5") or "")
    if not md5 or md5.endswith(".dir") or out.get("hash") != "md5" or not path.is_file():
        return False
    return path.stat().st_size == out.get("size") and file_digest(path, "md5") == md5


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a crash leaves the old file or the new one, never half of either."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@dataclass(frozen=True)
class StageSpec:
    """One ``dvc.yaml`` stage as the orchestrator and the CLI see it: what it reads, writes and waits for."""

    name: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]  # outs, metrics and plots, as written (templated paths unresolved)
    upstream: tuple[str, ...]  # stages whose outputs it reads, without the ones implied by a longer path


def _entry_paths(entries: list[Any] | None) -> tuple[str, ...]:
    return tuple(next(iter(entry)) if isinstance(entry, dict) else str(entry) for entry in entries or [])


def _covers(out: str, dep: str) -> bool:
    return dep == out or dep.startswith(f"{out}/") or out.startswith(f"{dep}/")


def pipeline(dvc_yaml: Path) -> dict[str, StageSpec]:
    """The stages of ``dvc.yaml``, each after every stage it depends on (file order among independent ones).

    ``dvc.yaml`` is the one owner of the stage list and graph: the DAG's stage tasks and edges, the CLI's help and
    the orchestrator's report list are derived from this.
    """
    stages = _read_stages(dvc_yaml)
    edges = _edges(stages)
    specs: dict[str, StageSpec] = {}

    def edges_into(name: str) -> set[str]:
        return {up for up, down in edges if down == name}

    while len(specs) < len(stages):
        name = next((name for name in stages if name not in specs and edges_into(name) <= specs.keys()), None)
        if name is None:
            raise FeedbackflowError(f"{dvc_yaml}: the stages form a cycle")
        stage = stages[name]
        specs[name] = StageSpec(
            name=name,
            deps=_entry_paths(stage.get("deps")),
            outs=sum((_entry_paths(stage.get(kind)) for kind in ("outs", "metrics", "plots")), ()),
            upstream=tuple(up for up in stages if (up, name) in edges),
        )
    return specs


def stage_edges(dvc_yaml: Path) -> set[tuple[str, str]]:
    """The stage graph's edges as ``dvc.yaml`` defines them: stage A -> stage B when B depends on an output of A.

    Edges implied by a longer path are dropped (transitive reduction), so the result is the wiring an orchestrator
    needs: ``ingest -> validate -> ... -> split -> train``, not also ``anonymise -> train``.
    """
    return _edges(_read_stages(dvc_yaml))


def _read_stages(dvc_yaml: Path) -> dict[str, Any]:
    return yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]


def _edges(stages: dict[str, Any]) -> set[tuple[str, str]]:
    outs = {
        name: _entry_paths(stage.get("outs")) + _entry_paths(stage.get("metrics")) for name, stage in stages.items()
    }
    direct = {
        (producer, consumer)
        for consumer, stage in stages.items()
        for dep in _entry_paths(stage.get("deps"))
        for producer, produced in outs.items()
        if producer != consumer and any(_covers(out, dep) for out in produced)
    }

    def reachable(start: str, skip: tuple[str, str]) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for edge in direct:
                if edge[0] == node and edge != skip and edge[1] not in seen:
                    seen.add(edge[1])
                    todo.append(edge[1])
        return seen

    return {edge for edge in direct if edge[1] not in reachable(edge[0], edge)}


REMOTES = ("general", "restricted")


def remote_commands(
    general: str, restricted: str, endpoint_url: str | None = None, region: str | None = None
) -> list[list[str]]:
    """``dvc remote modify --local`` commands that point both remotes at S3 (AWS or an S3-compatible endpoint).

    Both remotes get the same endpoint and region: a restricted remote without ``endpointurl`` would push raw
    personal data to AWS's public endpoint instead of MinIO. ``--local`` keeps the URLs out of Git.

    Raises:
        FeedbackflowError: a URL is not ``s3://bucket/...`` or both remotes share a bucket (restricted data must be
            separable by bucket policy).
    """
    urls = {"general": general, "restricted": restricted}
    buckets = {}
    for name, url in urls.items():
        match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?", url)
        if not match:
            raise FeedbackflowError(f"{name} remote '{url}': expected s3://bucket/prefix")
        buckets[name] = match.group(1)
    if buckets["general"] == buckets["restricted"]:
        raise FeedbackflowError(
            f"general and restricted remotes share the bucket '{buckets['general']}': use a separate bucket for the "
            "restricted remote (raw personal data), so that access to it can be granted separately"
        )
    commands = []
    for name in REMOTES:
        commands.append(["remote", "modify", "--local", name, "url", urls[name]])
        if endpoint_url:
            commands.append(["remote", "modify", "--local", name, "endpointurl", endpoint_url])
        if region:
            commands.append(["remote", "modify", "--local", name, "region", region])
    return commands
