"""Every path is a member of ``ProjectPaths``, and commands find the project from any subfolder."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feedbackflow.cli import app
from feedbackflow.config import ProjectPaths, experiment_name

ROOT = Path(__file__).resolve().parents[2]
PATHS_MODULE = ROOT / "src" / "feedbackflow" / "config.py"

# Folders and files ProjectPaths owns: a string that starts with one of the prefixes, or names one of them in a ``/``
# join or in ``Path(...)``, builds a project path by hand. (Paths that params.yaml configures, such as
# ``monitor.workspace``, are values, not code.)
OWNED_PREFIXES = ("reports/", ".work/")
OWNED_NAMES = {"reports", ".work", "governance", "runs", "data_docs", "run_summary.json", "retrain_decisions.jsonl"}
# A module constant holding one of these is a path built in two steps ("governance" is also a URL route's name).
OWNED_CONSTANTS = OWNED_NAMES - {"governance"}


def _project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text("{}\n", encoding="utf-8")
    (root / "dvc.yaml").write_text("stages: {}\n", encoding="utf-8")
    return root


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def hand_built_paths(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every string in ``source`` that builds a path ProjectPaths owns (docstrings aside)."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    joined: set[int] = set()
    constants = {id(node.value) for node in getattr(tree, "body", []) if isinstance(node, ast.Assign | ast.AnnAssign)}
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            joined.update(id(side) for side in (node.left, node.right))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Path":
            joined.update(id(arg) for arg in node.args)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
            continue
        text = node.value
        if (
            text.startswith(OWNED_PREFIXES)
            or (id(node) in joined and text in OWNED_NAMES)
            or (id(node) in constants and text in OWNED_CONSTANTS)
        ):
            found.append((node.lineno, text))
    return sorted(found)


def test_no_module_builds_a_project_path_by_hand():
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "dags").glob("*.py"), *(ROOT / "plugins").glob("*.py")]
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in sorted(files)
        if path != PATHS_MODULE
        for line, text in hand_built_paths(path.read_text(encoding="utf-8"))
    ]
    assert not found, "paths built by hand (use a ProjectPaths member, src/feedbackflow/config.py):\n" + "\n".join(
        found
    )


def test_the_check_sees_joins_prefixes_and_path_calls():
    source = (
        '"""Docstrings may name reports/runs."""\n'
        'a = root / "reports" / "runs"\n'
        'b = ".work/celery"\n'
        'c = Path(".work")\n'
        'd = {"governance": 1, "runs": 2}\n'
        'SITE = "data_docs"\n'
    )
    assert hand_built_paths(source) == [
        (2, "reports"),
        (2, "runs"),
        (3, ".work/celery"),
        (4, ".work"),
        (6, "data_docs"),
    ]


def test_discover_walks_up_to_the_project(tmp_path, monkeypatch):
    root = _project(tmp_path / "project")
    deep = root / "data" / "landing" / "2026"
    deep.mkdir(parents=True)
    monkeypatch.delenv("FEEDBACKFLOW_PROJECT_DIR", raising=False)
    monkeypatch.chdir(deep)
    assert ProjectPaths.discover().root == root.resolve()


def test_discover_needs_both_files_and_falls_back_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text("{}\n", encoding="utf-8")  # no dvc.yaml: not a project
    folder = tmp_path / "somewhere"
    folder.mkdir()
    monkeypatch.delenv("FEEDBACKFLOW_PROJECT_DIR", raising=False)
    monkeypatch.chdir(folder)
    assert ProjectPaths.discover().root == folder.resolve()


def test_the_environment_and_an_explicit_root_win(tmp_path, monkeypatch):
    root = _project(tmp_path / "project")
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(other))
    assert ProjectPaths.discover().root == other.resolve()
    assert ProjectPaths.discover(root).root == root.resolve()


def test_registry_list_from_a_subfolder_reads_the_root_dvc_config(tmp_path, monkeypatch):
    root = _project(tmp_path / "project")
    remote = tmp_path / "remote"
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text(
        f"[core]\n    remote = local\n['remote \"local\"']\n    url = {remote}\n", encoding="utf-8"
    )
    sub = root / "reports" / "evaluate"
    sub.mkdir(parents=True)
    monkeypatch.delenv("FEEDBACKFLOW_PROJECT_DIR", raising=False)
    monkeypatch.chdir(sub)
    result = CliRunner().invoke(app, ["registry", "list"])
    assert result.exit_code == 0, result.output
    assert f"registry {remote / 'registry'}" in result.output


@pytest.mark.parametrize("run_id", ["manual__2026-12-01T02:00:00+00:00", "scheduled__<x>"])
def test_a_run_is_recorded_under_its_experiment_name(run_id):
    paths = ProjectPaths(Path("/p"))
    assert paths.run_record(run_id) == Path("/p/reports/runs") / f"{experiment_name(run_id)}.json"
    assert paths.governance_record(run_id) == Path("/p/governance/runs") / f"{experiment_name(run_id)}.json"
    assert ProjectPaths.relative().run_summary.as_posix() == "reports/run_summary.json"
