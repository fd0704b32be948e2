"""What the ``erasure_request`` DAG runs: its typed Params and the one call that erases.

The task returns the certificate's summary (request id, state, counts, models): small, and without any identifier,
so nothing personal reaches an XCom or a task log. The identifiers themselves arrive in the run's Params.
"""

from __future__ import annotations

from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.governance.erasure import ErasureIncompleteError, ErasureRequest, forget
from feedbackflow.settings import load_settings

IDENTIFIER_PARAMS = {
    "email": "E-mail addresses",
    "phone": "Phone numbers (any format)",
    "customer_id": "Customer or account ids",
    "name": "Names",
}


def erasure_params() -> dict[str, Any]:
    """The request's Params, typed for Airflow's trigger form, the CLI and the REST API."""
    from airflow.sdk import Param

    params: dict[str, Any] = {
        "request_id": Param(
            "", type="string", minLength=1, maxLength=100, title="Request id", description="Named in the certificate."
        ),
        "requested_by": Param("", type="string", minLength=1, maxLength=200, title="Requested by"),
    }
    for name, title in IDENTIFIER_PARAMS.items():
        params[name] = Param(
            [], type="array", items={"type": "string"}, title=title, description="Any one identifier is enough."
        )
    return params


def erase(params: dict[str, Any], approval: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the request in ``params`` (``approval``: the approval task's XCom, when one was asked); returns the
    certificate's summary (no identifier).

    Raises:
        ValueError: no identifier given.
        ErasureIncompleteError: a step failed, or copies were left; the certificate says ``incomplete`` and a rerun
            resumes.
    """
    from feedbackflow.orchestration.tasks import approval_decision

    _, approved_by = approval_decision(approval)
    paths = ProjectPaths.discover()
    identifiers = {name: [str(value) for value in params.get(name) or []] for name in IDENTIFIER_PARAMS}
    request = ErasureRequest(str(params["request_id"]), identifiers, str(params["requested_by"]), approved_by)
    certificate = forget(paths, load_settings(paths.params), request)
    if certificate["state"] != "done":  # the verification found copies: the run fails, it is never reported done
        raise ErasureIncompleteError(
            f"erasure {request.request_id}: the verification found {certificate['verification']['found']} copies "
            "left (see the certificate); run the request again once they can be deleted"
        )
    keys = ("request_id", "state", "rows_removed", "models", "verification")
    return {key: certificate[key] for key in keys}
