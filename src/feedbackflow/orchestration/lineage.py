"""OpenLineage for feedbackflow's tasks through Airflow's official provider (``apache-airflow-providers-openlineage``).

Out of the box the provider emits no datasets for TaskFlow tasks, and DVC's transfers bypass Airflow's hooks. This
extractor fills that in: the provider calls it on task start and completion and sends what it returns in the START and
COMPLETE events, through the transport configured the standard way (``OPENLINEAGE_URL``,
``OPENLINEAGE__TRANSPORT__*``, ``openlineage.yml`` or ``[openlineage] transport``); with none set the provider is
disabled and nothing here runs. ``feedbackflow.env`` registers it (``AIRFLOW__OPENLINEAGE__EXTRACTORS``).

What a task read and wrote, and the facets' counts, come from :func:`feedbackflow.governance.lineage.task_lineage`:
``dvc.yaml`` is the graph, ``dvc.lock`` the versions.
"""

from __future__ import annotations

from typing import Any

import attr
from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from openlineage.client.event_v2 import Dataset
from openlineage.client.facet_v2 import RunFacet, dataset_version_dataset

from feedbackflow.config import ProjectPaths
from feedbackflow.governance.lineage import DatasetRef, task_lineage

#: Where the custom facets are described (their ``_schemaURL``).
FACET_DOCS = "https://openlineage.io/spec/facets/custom#feedbackflow"


@attr.define
class CountsRunFacet(RunFacet):
    """A run facet of counts, shares and booleans only (rows by rule, entities by type, the gate, the drift share)."""

    counts: dict[str, Any] = attr.field(factory=dict)
    facet: str = attr.field(default="", kw_only=True)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._schemaURL = f"{FACET_DOCS}/{self.facet}"


class DvcStageExtractor(BaseExtractor):
    """Inputs, outputs and facets of the DAGs' TaskFlow tasks and the approval task, by ``task_id``.

    A task whose id is a ``dvc.yaml`` stage reports that stage's data; the others what
    :data:`~feedbackflow.governance.lineage.TASK_DATA` lists; any other task nothing (the provider then falls back
    to its own inlets and outlets).
    """

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator", "_ShortCircuitDecoratedOperator", "GateApprovalOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        return operator_lineage(self.operator.task_id, finished=False)

    def extract_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        return operator_lineage(self.operator.task_id, finished=True)

    def extract_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        return operator_lineage(self.operator.task_id, finished=False)  # a failed stage's reports are not its own


def operator_lineage(task_id: str, finished: bool, paths: ProjectPaths | None = None) -> OperatorLineage:
    """``task_id``'s lineage as the provider's ``OperatorLineage`` (facets only once the task ``finished``)."""
    lineage = task_lineage(paths or ProjectPaths.discover(), task_id, finished=finished)
    return OperatorLineage(
        inputs=[ol_dataset(ref) for ref in lineage.inputs],
        outputs=[ol_dataset(ref) for ref in lineage.outputs],
        run_facets={name: CountsRunFacet(counts=counts, facet=name) for name, counts in lineage.facets.items()},
    )


def ol_dataset(ref: DatasetRef) -> Dataset:
    """An OpenLineage dataset, with the DVC hash as its ``version`` facet when there is one."""
    facets: dict[str, Any] = {}
    if ref.version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=ref.version)
    return Dataset(namespace=ref.namespace, name=ref.name, facets=facets)
