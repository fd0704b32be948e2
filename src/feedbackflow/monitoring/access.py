"""Who may open the governance views: an Airflow auth-manager permission on the ``Governance`` custom view.

The plugin asks the configured auth manager ``is_authorized_custom_view(method="GET", resource_name="Governance")``.

* With the FAB auth manager (production), give a role the ``GET`` permission on the ``Governance`` resource
  (e.g. a ``Governance`` role) and assign it to the governance team.
* Airflow's simple auth manager lets every logged-in user read every custom view, so it cannot tell a governance
  user from another. :class:`GovernanceAuthManager` is the simple auth manager plus one rule: only the users named in
  ``FEEDBACKFLOW_GOVERNANCE_USERS`` (comma-separated) may read ``Governance``. Enable it with
  ``AIRFLOW__CORE__AUTH_MANAGER=feedbackflow.monitoring.access.GovernanceAuthManager``.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

GOVERNANCE_RESOURCE = "Governance"
GOVERNANCE_USERS_ENV = "FEEDBACKFLOW_GOVERNANCE_USERS"


def governance_users() -> frozenset[str]:
    """The user names granted the governance views (read from the environment on every call)."""
    return frozenset(name.strip() for name in os.environ.get(GOVERNANCE_USERS_ENV, "").split(",") if name.strip())


class GovernanceAuthManager(SimpleAuthManager):
    """Airflow's simple auth manager, where the ``Governance`` views need a listed governance user."""

    def is_authorized_custom_view(self, *, method: Any, resource_name: str, user: Any) -> bool:
        if resource_name == GOVERNANCE_RESOURCE:
            return method == "GET" and user.get_name() in governance_users()
        return bool(super().is_authorized_custom_view(method=method, resource_name=resource_name, user=user))
