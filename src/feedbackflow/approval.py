"""The human approval between gate and promote: Airflow's ``ApprovalOperator``, with its decision recorded.

Imported by the DAG only (it needs Airflow's standard provider). The decision and who made it go to the XCom
``decision`` (promote names the approver in the registry, summarise reports it); a Reject, or no answer before the
timeout (the default option), is written to the shared registry at once, so the refused challenger is kept as
``rejected`` with its gate report even though ``promote`` is skipped.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from feedbackflow.orchestration.tasks import DECISION_KEY, approval_decision, record_rejection_task


class GateApprovalOperator(ApprovalOperator):
    """An ``ApprovalOperator`` that records its outcome; ``evaluated_task_id`` names the evaluate task."""

    def __init__(self, *, evaluated_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.evaluated_task_id = evaluated_task_id

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if "error" not in event:
            approved, by = approval_decision(event)
            context["ti"].xcom_push(key=DECISION_KEY, value={"approved": approved, "by": by})
            if not approved:
                evaluated = context["ti"].xcom_pull(task_ids=self.evaluated_task_id)
                record_rejection_task([evaluated], context["run_id"], by or "approver")
        return super().execute_complete(context=context, event=event)
