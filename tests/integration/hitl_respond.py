"""Answer a waiting Airflow approval task as a user would from the UI: through the Core API's own route function.

Run in the Airflow environment of a DAG run (same AIRFLOW_HOME, so the same metadata database):
``python hitl_respond.py DAG_ID TASK_ID OPTION USER TIMEOUT_S``. Waits until the task is parked in
``awaiting_input``, prints its subject and body (the gate report) to stdout, then records the response with
``update_hitl_detail`` (the handler behind ``PATCH .../hitlDetails``), which resumes the task.
"""

from __future__ import annotations

import sys
import time


class _User:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_id(self) -> str:
        return f"id-{self.name}"

    def get_name(self) -> str:
        return self.name


def main(dag_id: str, task_id: str, option: str, user: str, timeout_s: float) -> int:
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with create_session() as session:
            waiting = session.scalars(
                select(TaskInstance)
                .options(joinedload(TaskInstance.hitl_detail))
                .where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.task_id == task_id,
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                )
            ).first()
            if waiting is not None and waiting.hitl_detail is not None:
                print(f"SUBJECT: {waiting.hitl_detail.subject}")
                print(f"BODY:\n{waiting.hitl_detail.body}")
                update_hitl_detail(
                    dag_id=dag_id,
                    dag_run_id=waiting.run_id,
                    task_id=task_id,
                    update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option], params_input={}),
                    user=_User(user),  # type: ignore[arg-type]
                    session=session,
                )
                return 0
        time.sleep(2)
    print(f"no {dag_id}.{task_id} awaiting input within {timeout_s} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])))
