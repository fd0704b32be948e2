"""One module per pipeline stage; each exposes ``run(settings, paths) -> dict``.

The module name is the stage name everywhere: the ``dvc.yaml`` stage, the Airflow ``task_id`` and the CLI command.
This package is the registry of stages: the modules here are the stage commands, ``dvc.yaml`` orders and wires
them (:func:`feedbackflow.storage.dvc.pipeline`), and each module's docstring says what the stage does.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import re


def stage_modules() -> list[str]:
    """The stage modules of this package by name (every public module here is a stage)."""
    return sorted(module.name for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_"))


def stage_summary(name: str) -> str:
    """The first sentence of stage ``name``'s module docstring, as plain text (read from the file, not imported)."""
    spec = importlib.util.find_spec(f"{__name__}.{name}")
    if spec is None or spec.origin is None:
        raise ValueError(f"no stage module {name!r} in {__name__}")
    with open(spec.origin, encoding="utf-8") as handle:
        docstring = ast.get_docstring(ast.parse(handle.read())) or ""
    first = docstring.split("\n\n")[0].replace("\n", " ").removeprefix(f"{name}: ")
    return re.sub(r"``([^`]*)``|:\w+:`~?\.?([^`]*)`", lambda match: match.group(1) or match.group(2), first)
