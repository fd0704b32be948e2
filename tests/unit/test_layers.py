"""Imports point down the layers, and no modules or packages import each other in a circle.

Layers, lowest first (a module may import its own package, and anything in a lower layer):

1. core: the top-level modules ``feedbackflow.{settings,config,io,errors,taxonomy,credentials,progress}``;
2. concern packages, in this order: ``storage`` <- ``sources`` <- ``quality``, ``privacy``, ``modeling``,
   ``evaluation`` (independent of one another) <- ``labelling`` (the review loop) <- ``monitoring`` <- ``governance``;
3. ``stages`` (one module per ``dvc.yaml`` stage);
4. ``orchestration``, with ``approval`` and ``assets`` (what Airflow runs);
5. entry points: ``dags/``, ``plugins/``, ``feedbackflow.cli``, ``feedbackflow.__main__``, ``feedbackflow.demo``.

Every import counts, at module level or inside a function: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "feedbackflow"


@dataclass(frozen=True)
class Layer:
    name: str
    groups: frozenset[str]
    lateral: bool = False
    """Whether different groups of this layer may import each other (without a circle)."""


LAYERS = (
    Layer(
        "core",
        frozenset({"", "settings", "config", "io", "errors", "taxonomy", "credentials", "progress"}),
        lateral=True,
    ),
    Layer("storage", frozenset({"storage"})),
    Layer("sources", frozenset({"sources"})),
    Layer("quality, privacy, modeling, evaluation", frozenset({"quality", "privacy", "modeling", "evaluation"})),
    Layer("labelling", frozenset({"labelling"})),
    Layer("monitoring", frozenset({"monitoring"})),
    Layer("governance", frozenset({"governance"})),
    Layer("stages", frozenset({"stages"})),
    Layer("orchestration", frozenset({"orchestration", "approval", "assets"}), lateral=True),
    Layer("entry points", frozenset({"cli", "__main__", "demo", "dags", "plugins"}), lateral=True),
)


def module_files() -> dict[str, Path]:
    """Every module of the package, the DAG files and the plugins, by dotted name (``dags.x``, ``plugins.y``)."""
    found: dict[str, Path] = {}
    for path in sorted((ROOT / "src").rglob("*.py")):
        parts = list(path.relative_to(ROOT / "src").with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    for folder in ("dags", "plugins"):
        for path in sorted((ROOT / folder).glob("*.py")):
            found[f"{folder}.{path.stem}"] = path
    return found


def _known(name: str, modules: set[str]) -> str | None:
    """The longest prefix of ``name`` that is one of ``modules``."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imports_of(module: str, source: str, is_package: bool, modules: set[str]) -> set[str]:
    """The project modules ``source`` imports anywhere (module level, functions, ``TYPE_CHECKING`` blocks).

    ``from package import name`` depends on the submodule ``package.name`` when there is one, else on ``package``.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            names = [
                f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix for alias in node.names
            ]
        else:
            continue
        found.update(target for name in names if (target := _known(name, modules)) and target != module)
    return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
    files = module_files()
    modules = set(files)
    return {
        module: imports_of(module, path.read_text(encoding="utf-8"), path.name == "__init__.py", modules)
        for module, path in files.items()
    }


def group_of(module: str) -> str:
    """``feedbackflow.monitoring.drift`` -> ``monitoring``; ``feedbackflow`` -> ``""``; ``dags.x`` -> ``dags``."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return parts[0]
    return parts[1] if len(parts) > 1 else ""


def layer_of(module: str) -> int | None:
    group = group_of(module)
    return next((rank for rank, layer in enumerate(LAYERS) if group in layer.groups), None)


def package_of(module: str) -> str:
    """The node of the package graph: a top-level package or module of feedbackflow, ``dags`` or ``plugins``."""
    group = group_of(module)
    return f"{PACKAGE}.{group}" if module.startswith(PACKAGE) and group else group or PACKAGE


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path(graph: dict[str, set[str]], members: list[str]) -> str:
    """The component's members and one circle through them, for the message: ``[a, b, c]: a -> b -> a``."""
    inside = set(members)
    start = members[0]
    seen = [start]
    node = start
    while True:
        node = sorted(target for target in graph[node] if target in inside)[0]
        if node in seen:
            return f"{members}: " + " -> ".join([*seen[seen.index(node) :], node])
        seen.append(node)


def test_every_module_has_a_layer():
    unplaced = sorted(module for module in import_graph() if layer_of(module) is None)
    assert not unplaced, f"modules outside every layer (add their package to LAYERS in {__name__}): {unplaced}"


def test_imports_point_down_the_layers():
    wrong = []
    for importer, targets in sorted(import_graph().items()):
        own = layer_of(importer)
        for target in sorted(targets):
            theirs = layer_of(target)
            if own is None or theirs is None or group_of(importer) == group_of(target):
                continue
            if theirs > own or (theirs == own and not LAYERS[own].lateral):
                wrong.append(
                    f"{importer} ({LAYERS[own].name}) imports {target} ({LAYERS[theirs].name}): "
                    + ("a layer above it" if theirs > own else "a sibling of the same layer")
                )
    assert not wrong, "imports that run up (or across) the layers:\n" + "\n".join(wrong)


def test_no_modules_import_each_other_in_a_circle():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "module import circles:\n" + "\n".join(_path(graph, members) for members in found)


def test_no_packages_import_each_other_in_a_circle():
    packages: dict[str, set[str]] = {}
    for importer, targets in import_graph().items():
        edges = packages.setdefault(package_of(importer), set())
        edges.update(package_of(target) for target in targets if package_of(target) != package_of(importer))
    found = cycles(packages)
    assert not found, "package import circles:\n" + "\n".join(_path(packages, members) for members in found)


def test_stages_do_not_import_each_other():
    """A stage module is wiring: what two stages share (a report reader, a path) lives in a concern package."""
    stages = {module for module in import_graph() if module.startswith(f"{PACKAGE}.stages.")}
    stage_modules = {module for module in stages if not module.rsplit(".", 1)[1].startswith("_")}
    wrong = [
        f"{module} imports {target}"
        for module in sorted(stage_modules)
        for target in sorted(import_graph()[module] & stage_modules)
    ]
    assert not wrong, "stages importing stages:\n" + "\n".join(wrong)


def test_the_parser_sees_deferred_relative_and_from_package_imports():
    modules = {"feedbackflow", "feedbackflow.io", "feedbackflow.stages", "feedbackflow.stages.validate", "dags.x"}
    source = (
        "from feedbackflow import io\n"
        "def f():\n"
        "    from feedbackflow.stages import validate\n"
        "    from . import helper\n"
        "class C:\n"
        "    def g(self):\n"
        "        import feedbackflow.stages.validate.inner\n"
    )
    found = imports_of("feedbackflow.stages.train", source, False, modules)
    assert found == {"feedbackflow.io", "feedbackflow.stages.validate", "feedbackflow.stages"}


def test_the_layer_checks_fail_on_a_known_bad_graph():
    graph = {
        "feedbackflow.monitoring.a": {"feedbackflow.stages.validate"},
        "feedbackflow.stages.validate": {"feedbackflow.monitoring.a"},
    }
    assert cycles(graph) == [["feedbackflow.monitoring.a", "feedbackflow.stages.validate"]]
    assert layer_of("feedbackflow.monitoring.a") < layer_of("feedbackflow.stages.validate")  # type: ignore[operator]
    assert _path(graph, cycles(graph)[0]).endswith("a -> feedbackflow.stages.validate -> feedbackflow.monitoring.a")
