"""Benchmark erasing one subject from a large history: ``feedbackflow forget`` on a generated Git + DVC project.

Run from the repository root (``make bench-erasure`` does)::

    python -m benchmarks.bench_erasure [--rows 1000000] [--nights 10] [--json-out PATH]

A project is generated in a temporary folder: ``--nights`` raw CSV batches of ``rows / nights`` rows each, and the
datasets derived from them (validated, quarantine, anonymised, split; Parquet), each night committed with
``dvc commit`` and pushed to two local remotes, so the cache and each remote hold every night's version. One
subject is planted in three rows of three nights (e-mail, phone, name). Then ``feedbackflow forget`` runs in a child
process; its wall time and peak RSS (the child and the DVC processes it waits for) are printed with the rows removed
and the verification count. The issue's target (at most 10 minutes on 2 cores, memory bounded) is printed next to
the figures, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-erasure-key-7d3f9a1c5e"
PLANTED = ["write to jane.roe@example.com", "call 07700 900 123", "JANE ROE again"]
STAGES = {
    "stages": {
        "ingest": {"cmd": "echo", "outs": [{"data/raw": {"persist": True, "remote": "restricted"}}]},
        "validate": {
            "cmd": "echo",
            "deps": ["data/raw"],
            "outs": [{"data/validated": {"remote": "restricted"}}, {"data/quarantine": {"remote": "restricted"}}],
        },
        "anonymise": {"cmd": "echo", "deps": ["data/validated"], "outs": ["data/anonymised"]},
        "split": {"cmd": "echo", "deps": ["data/anonymised"], "outs": ["data/split"]},
    }
}


def _run(root: Path, *command: str) -> None:
    subprocess.run(command, cwd=root, check=True, capture_output=True)


def _night_rows(night: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    import pandas as pd

    words = np.array(["card", "refund", "late", "fee", "app", "login", "transfer", "thanks", "broken", "pin"])
    texts = [" ".join(choice) for choice in rng.choice(words, size=(rows, 8))]
    frame = pd.DataFrame(
        {
            "id": [f"n{night}-{i}" for i in range(rows)],
            "text": texts,
            "label": rng.choice(["billing", "card", "login"], rows),
            "channel": "app",
            "created_at": "2026-11-01T10:00:00Z",
        }
    )
    if night < len(PLANTED):
        frame.loc[rows // 2, "text"] = PLANTED[night]
    return frame


def build(root: Path, rows: int, nights: int) -> None:
    """Generate the project: one commit per night, every version in the cache and both remotes."""
    dvc = (sys.executable, "-m", "dvc")
    (root / "params.yaml").write_text((ROOT / "params.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (root / "dvc.yaml").write_text(yaml.safe_dump(STAGES, sort_keys=False), encoding="utf-8")
    for command in (("git", "init", "-q"), (*dvc, "init", "-q")):
        _run(root, *command)
    _run(root, "git", "config", "user.email", "bench@example.org")
    _run(root, "git", "config", "user.name", "bench")
    _run(root, *dvc, "remote", "add", "-d", "general", str(root.parent / "general"))
    _run(root, *dvc, "remote", "add", "restricted", str(root.parent / "restricted"))
    import pandas as pd

    rng = np.random.default_rng(7)
    frames = []
    for night in range(nights):
        frame = _night_rows(night, rows // nights, rng)
        frames.append(frame)
        raw = root / "data" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        frame.to_csv(raw / f"night{night}.csv", index=False)
        entry = {"batch_id": f"b{night}", "sequence": night + 1, "source": "folder", "key": f"n{night}.csv"}
        entry |= {"size": 0, "sha256": f"{night:064d}", "raw_file": f"night{night}.csv"}
        with open(raw / "_manifest.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        _derive(root, pd.concat(frames, ignore_index=True))
        _run(root, *dvc, "commit", "--force", "ingest", "validate", "anonymise", "split")
        _run(root, *dvc, "push")
        _run(root, "git", "add", "-A")
        _run(root, "git", "commit", "-qm", f"night {night}")


def _derive(root: Path, every: pd.DataFrame) -> None:
    bad = every["id"].str.endswith("7")
    for name, frame in (("validated", every[~bad]), ("quarantine", every[bad])):
        (root / "data" / name).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(root / "data" / name / f"{name}.parquet", index=False)
    anonymised = every[~bad].assign(text="<PERSON> wrote")
    (root / "data" / "anonymised").mkdir(exist_ok=True)
    anonymised.to_parquet(root / "data" / "anonymised" / "feedback.parquet", index=False)
    (root / "data" / "split").mkdir(exist_ok=True)
    anonymised.iloc[::5].to_parquet(root / "data" / "split" / "test.parquet", index=False)
    anonymised.drop(anonymised.index[::5]).to_parquet(root / "data" / "split" / "train.parquet", index=False)


def erase(root: Path) -> dict[str, Any]:
    """Run ``feedbackflow forget`` in a child process; wall seconds, peak RSS and the certificate's figures."""
    env = {**os.environ, "FEEDBACKFLOW_PROJECT_DIR": str(root), "FEEDBACKFLOW_ERASURE_KEY": KEY}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "feedbackflow", "forget", "--request-id", "BENCH-1"]
    command += ["--email", "Jane.Roe@Example.com", "--phone", "+44 7700 900123", "--name", "Jane Roe"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"forget failed ({done.returncode}):\n{done.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024
    certificate = json.loads((root / "governance" / "erasure" / "BENCH-1.json").read_text(encoding="utf-8"))
    return {
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(peak, 2),
        "rows_removed": certificate["rows_removed"],
        "objects_deleted": {name: store["versions"] for name, store in certificate["objects_deleted"].items()},
        "verification": certificate["verification"],
        "state": certificate["state"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-erasure-") as folder:
        root = Path(folder) / "project"
        root.mkdir()
        started = time.perf_counter()
        build(root, args.rows, args.nights)
        built = time.perf_counter() - started
        result = {"rows": args.rows, "nights": args.nights, "build_seconds": round(built, 1), **erase(root)}
    result["target"] = "at most 600 s on 2 cores, memory bounded"
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
