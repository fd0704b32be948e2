"""Persistent stage outputs back to where a failed run found them (the append-only raw store).

DVC never removes a ``persist: true`` output before the stage runs, and the stage appends to it. A run that fails
after appending (an S3 or PostgreSQL source lost half-way, a query that breaks on row 30 000, a killed worker) leaves
files the lock file does not know: the retry or the next night would see half a delivery, and DVC refuses to pull
over them ("Can't remove the following unsaved files"), so nothing recovers without a person.

:class:`PersistentSnapshot` notes the outputs' files before the run as hard links (free on the same file system; a
copy where linking is impossible) under ``.work/rollback/<stage>/``. After a failure :meth:`~PersistentSnapshot.restore`
moves every file the run added or replaced into the failed run's folder (kept, never lost) and puts the noted files
back; after a success :meth:`~PersistentSnapshot.discard` drops the links. A snapshot a killed run left behind is
restored by the next run before anything else happens.

The contract this relies on is the raw store's (:mod:`feedbackflow.storage.manifest`): a persistent output changes by
adding files or replacing them (written aside, then renamed), never by writing into an existing file. A file written
in place anyway cannot be put back from a link to itself: it is moved aside, and the next pull brings DVC's version.
"""

from __future__ import annotations

import filecmp
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: Written last when a snapshot is taken: a snapshot without it was cut short before the stage started.
COMPLETE = "_snapshot.json"


def _files(top: Path) -> dict[str, Path]:
    """Relative path -> path of every file (links included, not followed) under ``top``, or ``top`` itself."""
    if top.is_symlink() or top.is_file():
        return {"": top}
    if not top.is_dir():
        return {}
    found = {}
    for folder, _dirs, names in os.walk(top):
        for name in names:
            path = Path(folder) / name
            found[path.relative_to(top).as_posix()] = path
    return found


def _signature(path: Path) -> list[int]:
    info = path.lstat()
    return [info.st_ino, info.st_size, info.st_mtime_ns]


def _unchanged(path: Path, signature: list[int], saved: Path) -> bool:
    """The noted file itself, untouched, or a copy with the same bytes (DVC copies persistent outputs it unprotects)."""
    if _signature(path) == signature:
        return True
    if path.lstat().st_ino == signature[0] or not saved.is_file() or path.is_symlink():
        return False
    return path.lstat().st_size == saved.lstat().st_size and filecmp.cmp(path, saved, shallow=False)


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)


@dataclass(frozen=True)
class PersistentSnapshot:
    """Hard-link snapshot of one stage's persistent outputs (paths relative to ``root``) in ``folder``."""

    root: Path
    folder: Path
    outputs: tuple[str, ...]

    def take(self) -> None:
        """Note the outputs' files now (a previous snapshot must have been restored or discarded)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        noted: dict[str, dict] = {}
        for output in self.outputs:
            live = self.root / output
            files = _files(live)
            noted[output] = {"exists": live.exists() or live.is_symlink(), "files": {}}
            for relative, path in files.items():
                saved = self.folder / output / relative if relative else self.folder / output
                saved.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, saved, follow_symlinks=False)
                except OSError:  # another file system, or links not allowed: a copy costs more but holds the same
                    shutil.copy2(path, saved, follow_symlinks=False)
                noted[output]["files"][relative] = _signature(path)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / COMPLETE).write_text(json.dumps(noted), encoding="utf-8")

    def pending(self) -> bool:
        """True when a complete snapshot is here that no one restored or discarded (its run was killed)."""
        return (self.folder / COMPLETE).is_file()

    def restore(self, aside: Path) -> list[Path]:
        """Put the outputs back as noted; what the run added or replaced goes under ``aside`` (same layout).

        Returns:
            The moved-aside paths, at their new place (empty when the run changed nothing).
        """
        if not self.pending():
            self.discard()  # cut short before the stage ran: the outputs were never touched
            return []
        noted = json.loads((self.folder / COMPLETE).read_text(encoding="utf-8"))
        moved: list[Path] = []
        for output, before in noted.items():
            live_top, saved_top = self.root / output, self.folder / output
            for relative, path in _files(live_top).items():
                signature = before["files"].get(relative)
                saved = saved_top / relative if relative else saved_top
                if signature is not None and _unchanged(path, signature, saved):
                    continue
                target = aside / output / relative if relative else aside / output
                if signature is not None and path.lstat().st_ino == signature[0]:
                    logger.error("%s was written in place: moved aside, the next pull restores DVC's version", path)
                    saved.unlink(missing_ok=True)
                _move(path, target)
                moved.append(target)
            for relative in before["files"]:
                live = live_top / relative if relative else live_top
                saved = saved_top / relative if relative else saved_top
                if not (live.exists() or live.is_symlink()) and (saved.exists() or saved.is_symlink()):
                    _move(saved, live)
            if before["exists"] and not live_top.exists():
                live_top.mkdir(parents=True)  # an empty folder output the run removed
        if moved:
            logger.warning(
                "rolled back %s: %d file(s) the failed run added or replaced kept in %s",
                ", ".join(noted),
                len(moved),
                aside,
            )
        self.discard()
        return moved

    def discard(self) -> None:
        """Forget the snapshot (the run succeeded)."""
        shutil.rmtree(self.folder, ignore_errors=True)
