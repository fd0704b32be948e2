"""dvc.yaml's code dependencies are exactly what each stage runs: a change re-runs what it can change, nothing else.

The import closure of ``feedbackflow.stages.<stage>`` is read with ``ast`` (module-level and deferred imports alike,
package ``__init__`` files included, as Python executes them); the stage's ``src/`` deps in dvc.yaml must equal it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.unit.test_layers import import_graph, module_files

ROOT = Path(__file__).resolve().parents[2]


def import_closure(module: str) -> set[Path]:
    """Every file of the package that importing ``module`` and running it can execute, parents' ``__init__`` too.

    The import graph is the layering test's (one parser of the project's imports).
    """
    graph, files = import_graph(), module_files()
    seen: set[str] = set()
    todo = [module]
    while todo:
        parts = todo.pop().split(".")
        for parent in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
            if parent in files and parent not in seen:
                seen.add(parent)
                todo.extend(graph[parent])
    return {files[name] for name in seen}


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
