"""The registry of stages: the public modules of this package, and what each says it does (no stage imports it)."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import re

import feedbackflow.stages as _package


def stage_modules() -> list[str]:
    """The stage modules of this package by name (every public module here is a stage)."""
    return sorted(module.name for module in pkgutil.iter_modules(_package.__path__) if not module.name.startswith("_"))


def stage_summary(name: str) -> str:
    """The first sentence of stage ``name``'s module docstring, as plain text (read from the file, not imported)."""
    spec = importlib.util.find_spec(f"{_package.__name__}.{name}")
    if spec is None or spec.origin is None:
        raise ValueError(f"no stage module {name!r} in {_package.__name__}")
    with open(spec.origin, encoding="utf-8") as handle:
        docstring = ast.get_docstring(ast.parse(handle.read())) or ""
    first = docstring.split("\n\n")[0].replace("\n", " ").removeprefix(f"{name}: ")
    return re.sub(r"``([^`]*)``|:\w+:`~?\.?([^`]*)`", lambda match: match.group(1) or match.group(2), first)
