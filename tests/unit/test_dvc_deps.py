"""dvc.yaml's code dependencies are exactly what each stage runs: a change re-runs what it can change, nothing else.

The import closure of ``feedbackflow.stages.<stage>`` is read with ``ast`` (module-level and deferred imports alike,
package ``__init__`` files included, as Python executes them); the stage's ``src/`` deps in dvc.yaml must equal it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def _module_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """The feedbackflow modules ``path`` imports (``from package import submodule`` counts the submodule)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}")}
    return {name for name in found if name.split(".")[0] == "feedbackflow" and _module_file(name)}


def import_closure(module: str) -> set[Path]:
    """Every file of the package that importing ``module`` and running it can execute, parents' ``__init__`` too."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for parent in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
            if parent not in seen and _module_file(parent):
                seen.add(parent)
                todo.extend(_imports(_module_file(parent), parent))  # type: ignore[arg-type]
    return {_module_file(name) for name in seen}  # type: ignore[misc]


def _dep_files(dep: str) -> set[Path]:
    path = ROOT / dep
    return set(path.rglob("*.py")) if path.is_dir() else {path}


def test_each_stage_depends_on_exactly_the_code_it_imports():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        declared = [dep for dep in stage["deps"] if isinstance(dep, str) and dep.startswith("src/")]
        listed = set().union(*(_dep_files(dep) for dep in declared))
        closure = import_closure(f"feedbackflow.stages.{name}")
        expected = sorted(str(path.relative_to(ROOT)) for path in closure)
        assert listed == closure, f"{name}: dvc.yaml deps should list exactly:\n  - " + "\n  - ".join(expected)


def test_closure_follows_deferred_and_package_imports():
    closure = {str(path.relative_to(ROOT)) for path in import_closure("feedbackflow.stages.train")}
    assert "src/feedbackflow/stages/train.py" in closure
    assert "src/feedbackflow/settings.py" in closure  # every stage reads params.yaml through it
    assert "src/feedbackflow/__init__.py" in closure and "src/feedbackflow/stages/__init__.py" in closure
