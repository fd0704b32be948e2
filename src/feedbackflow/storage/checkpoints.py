"""Training checkpoints in shared storage, so a training killed on one worker resumes on another.

The Trainer writes checkpoints to a local folder (``.work/train/checkpoints/<fingerprint>/``). Each complete
checkpoint is then packed into one tar file and copied beside the DVC cache of the default remote, under
``checkpoints/<fingerprint>/`` (an S3 prefix, or the remote folder): the storage every worker shares. A task retried on
any worker restores them before training and resumes from the newest one. The mirror holds what the local folder
holds (the newest checkpoint and the best epoch's), nothing older. Only anonymised data went into a checkpoint, hence
the general remote. Everything under the fingerprint is removed once the stage has written its outputs.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tarfile
from pathlib import Path

from feedbackflow.storage.registry_store import Store, remote_store

log = logging.getLogger(__name__)

ARCHIVE = re.compile(r"^(checkpoint-\d+)\.tar$")
STATE = "trainer_state.json"  # the Trainer writes it last: a checkpoint without it is incomplete


class CheckpointMirror:
    """The shared copy of one training's checkpoint folder."""

    def __init__(self, store: Store, local: Path) -> None:
        self.store, self.local = store, local

    @classmethod
    def of_project(cls, root: Path, fingerprint: str, local: Path) -> CheckpointMirror | None:
        """The mirror of ``local`` in the project's default DVC remote, under ``checkpoints/<fingerprint>``.

        None when the project has no default DVC remote (a bare folder): checkpoints then stay on this worker.
        """
        from dvc.config import Config

        if not Config(dvc_dir=str(root / ".dvc"))["core"].get("remote"):
            log.warning("no default DVC remote in %s: checkpoints stay on this worker", root)
            return None
        return cls(remote_store(root, f"checkpoints/{fingerprint}", "the shared checkpoints"), local)

    def _archives(self) -> dict[str, str]:
        """Checkpoint name -> archive name, of what the store holds."""
        return {match.group(1): name for name in self.store.names() if (match := ARCHIVE.match(name))}

    def restore(self) -> list[str]:
        """Unpack every stored checkpoint missing locally; returns the names restored.

        The Trainer records the best checkpoint by absolute path, which differs between workers: the restored
        ``trainer_state.json`` files are pointed at this worker's folder.
        """
        restored = []
        for checkpoint, archive in sorted(self._archives().items()):
            target = self.local / checkpoint
            if (target / STATE).is_file():
                continue
            with tarfile.open(fileobj=io.BytesIO(self.store.read(archive))) as packed:
                packed.extractall(self.local, filter="data")
            restored.append(checkpoint)
        for name in restored:
            self._relocate(self.local / name / STATE)
        if restored:
            log.info("restored checkpoint(s) %s from %s", ", ".join(restored), self.store.location)
        return restored

    def _relocate(self, state_file: Path) -> None:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        best = state.get("best_model_checkpoint")
        if best:
            state["best_model_checkpoint"] = str(self.local / Path(best).name)
            state_file.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")

    def upload(self, checkpoint: Path) -> None:
        """Copy a complete checkpoint to the store; drop stored ones the Trainer has since removed locally."""
        if not (checkpoint / STATE).is_file():
            return
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as packed:
            packed.add(checkpoint, arcname=checkpoint.name)
        self.store.create(f"{checkpoint.name}.tar", buffer.getvalue())
        for name, archive in self._archives().items():
            if not (self.local / name).is_dir():
                self.store.delete(archive)
        log.info("checkpoint %s copied to %s", checkpoint.name, self.store.location)

    def clear(self) -> None:
        """Remove every stored checkpoint of this training (the stage has written its outputs)."""
        for name in self.store.names():
            self.store.delete(name)
