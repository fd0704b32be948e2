"""One module per pipeline stage; each exposes ``run(settings, paths) -> dict``.

The module name is the stage name everywhere: the ``dvc.yaml`` stage, the Airflow ``task_id`` and the CLI command.
"""
