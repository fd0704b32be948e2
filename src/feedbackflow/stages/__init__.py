"""One module per pipeline stage; each exposes ``run(settings, paths) -> dict``.

The module name is the stage name everywhere: the ``dvc.yaml`` stage, the Airflow ``task_id`` and the CLI command.
The modules here are the stage commands (listed by :mod:`._registry`), ``dvc.yaml`` orders and wires
them (:func:`feedbackflow.storage.dvc.pipeline`), and each module's docstring says what the stage does.
"""
