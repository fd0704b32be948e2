"""The loop's state as JSON Lines: rows sent (queue), labels taken back, and disputes (ids reviewers disagree on).

Append-only files, one record a line, so a night's additions never rewrite what earlier nights kept. The state holds
anonymised text only (it is read from ``data/anonymised``), never a raw value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from feedbackflow.errors import StateCorruptError


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSON Lines file ([] when it does not exist).

    Raises:
        StateCorruptError: a line is not a JSON object (names the file and line).
    """
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise StateCorruptError(
                f"{path}, line {number}: not JSON ({error.msg}); restore it or remove the line"
            ) from None
        if not isinstance(record, dict):
            raise StateCorruptError(f"{path}, line {number}: not a JSON object; restore it or remove the line")
        records.append(record)
    return records


def append_lines(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Append records to a JSON Lines file (created with its folder); returns how many were written."""
    lines = [json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n" for record in records]
    if lines:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(lines)
    return len(lines)


def write_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace a JSON Lines file with ``records`` (written aside, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(
        "".join(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n" for record in records), encoding="utf-8"
    )
    partial.replace(path)


def known_ids(queue: list[dict[str, Any]], labels: list[dict[str, Any]]) -> set[str]:
    """Ids already sent or labelled: never sent again."""
    return {str(record["id"]) for record in (*queue, *labels)}
