"""Runs the GX suites and checks that they agree with the masks (:class:`QualityValidator`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

if TYPE_CHECKING:  # GX takes seconds to import; only the validate stage pays for it, at run time
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_suite import ExpectationSuite


from feedbackflow.quality.expectations import (
    build_batch_suite,
    build_row_suite,
    expected_unexpected_counts,
    gx_positions,
    gx_view,
    import_gx,
)
from feedbackflow.quality.masks import Prepared, any_rule, compute_rule_masks
from feedbackflow.quality.rules import REQUIRED_COLUMNS, RuleSpec


class SuiteMismatchError(RuntimeError):
    """The pandas masks and the GX results disagree: a bug in the masks or the suite, never a data problem."""


@dataclass(frozen=True)
class ExpectationOutcome:
    """One GX expectation result, reduced to what the report may show (no values, so no personal data)."""

    rule: str
    expectation_type: str
    column: str | None
    success: bool
    element_count: int | None
    unexpected_count: int | None
    expected_unexpected_count: int | None
    agrees: bool

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as a JSON-ready mapping."""
        return asdict(self)


@dataclass(frozen=True)
class RowValidation:
    """Row rule masks over a frame and the GX outcomes that confirmed them."""

    masks: dict[str, pd.Series]
    outcomes: list[ExpectationOutcome]
    prepared: Prepared
    gx_rows: int  # rows GX validated: all, or every flagged row plus a sample of passing ones

    @property
    def failing(self) -> pd.Series:
        """True for every row that broke at least one rule."""
        return any_rule(self.masks)


DATA_DOCS_SITE = "feedbackflow"


class QualityValidator:
    """Runs the suites through an ephemeral GX context; GX writes only the Data Docs site, when one is asked for.

    The row suite runs through a GX Checkpoint, so its validation result is stored in the context and, with
    ``docs_dir``, rendered into a file-system Data Docs site by an ``UpdateDataDocsAction``. The result format keeps
    counts and percentages only (no unexpected value samples), so the Data Docs and the report carry no row values.
    """

    # BASIC gives counts; no sample of unexpected values, which could hold personal data.
    RESULT_FORMAT: ClassVar[dict[str, Any]] = {"result_format": "BASIC", "partial_unexpected_count": 0}

    def __init__(
        self,
        spec: RuleSpec,
        docs_dir: Path | None = None,
        run_name: str = "manual",
        gx_passing_rows: int | None = None,
    ) -> None:
        """Create the context, a pandas data source, the two suites and the row suite's checkpoint.

        Args:
            spec: Rule parameters.
            docs_dir: Folder of the Data Docs site to build (None: no Data Docs).
            run_name: Run name shown in the Data Docs (the orchestrator's run id).
            gx_passing_rows: See :func:`gx_positions` (None: GX validates every row).
        """
        self.gx_passing_rows = gx_passing_rows
        gx = import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.spec = spec
        self.run_name = run_name
        self.docs_dir = docs_dir
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
        actions = []
        if docs_dir is not None:
            context.add_data_docs_site(
                site_name=DATA_DOCS_SITE,
                site_config={
                    "class_name": "SiteBuilder",
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                },
            )
            actions.append(gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DATA_DOCS_SITE]))
        asset = context.data_sources.add_pandas("feedbackflow").add_dataframe_asset("feedback")
        self._batch_definition: BatchDefinition = asset.add_batch_definition_whole_dataframe("whole_frame")
        self.batch_suite = build_batch_suite(spec)
        self.row_suite = context.suites.add(build_row_suite(spec))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name="feedback_rows", data=self._batch_definition, suite=self.row_suite)
        )
        self._checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name="feedback_rows",
                validation_definitions=[definition],
                actions=actions,
                result_format=self.RESULT_FORMAT,
            )
        )
        self._context = context
        self.last_result: Any = None

    def _run_checkpoint(self, view: pd.DataFrame) -> list[Any]:
        from great_expectations.core.run_identifier import RunIdentifier

        result = self._checkpoint.run(
            batch_parameters={"dataframe": view}, run_id=RunIdentifier(run_name=self.run_name)
        )
        (validation,) = result.run_results.values()
        self.last_result = validation  # the stored validation (counts only), for the Data Docs history
        return list(validation.results)

    def _validate(self, frame: pd.DataFrame, suite: ExpectationSuite) -> list[Any]:
        batch = self._batch_definition.get_batch(batch_parameters={"dataframe": frame})
        return list(batch.validate(suite, result_format=self.RESULT_FORMAT).results)

    def check_columns(self, frame: pd.DataFrame) -> tuple[bool, list[str]]:
        """Check one batch's header against :data:`RuleSpec.required_columns`.

        Args:
            frame: A raw batch (only its columns are looked at).

        Returns:
            GX's success flag and the missing columns in required order.

        Raises:
            SuiteMismatchError: GX and the column comparison disagree.
        """
        missing = [column for column in self.spec.required_columns if column not in frame.columns]
        (result,) = self._validate(frame.head(0), self.batch_suite)
        if bool(result.success) == bool(missing) or result.exception_info.get("raised_exception"):
            raise SuiteMismatchError(f"rule '{REQUIRED_COLUMNS}': GX success={result.success}, missing={missing}")
        return bool(result.success), missing

    def validate_rows(self, frame: pd.DataFrame) -> RowValidation:
        """Compute the row masks and confirm each rule's count with GX.

        Args:
            frame: Rows in validation order, core columns as ``str`` or ``None``; any index.

        Returns:
            The masks (on ``frame``'s index) and one outcome per row rule.

        Raises:
            SuiteMismatchError: a GX expectation raised, or its count differs from the mask's.
        """
        prepared = Prepared.of(frame, self.spec.now)
        masks = compute_rule_masks(frame, self.spec, prepared)
        view = gx_view(frame, masks, prepared).reset_index(drop=True)
        positions = gx_positions(frame, masks, self.gx_passing_rows)
        if positions is not None:
            frame = frame.iloc[positions]
            view = view.iloc[positions].reset_index(drop=True)
            expected = expected_unexpected_counts(frame, {rule: mask.iloc[positions] for rule, mask in masks.items()})
        else:
            expected = expected_unexpected_counts(frame, masks)
        return RowValidation(masks=masks, outcomes=self.confirm(view, expected), prepared=prepared, gx_rows=len(view))

    def confirm(self, view: pd.DataFrame, expected: Mapping[str, int]) -> list[ExpectationOutcome]:
        """Run the row suite's checkpoint on ``view`` and compare every rule's count with the masks'.

        Args:
            view: The rows GX re-checks (:func:`gx_view`), index 0..n-1.
            expected: Output of :func:`expected_unexpected_counts` on the same rows.

        Returns:
            One outcome per row rule.

        Raises:
            SuiteMismatchError: a GX expectation raised, or its count differs from the mask's.
        """
        outcomes = []
        for result in self._run_checkpoint(view):
            config = result.expectation_config
            rule = (config.meta or {})["rule"]
            info = result.exception_info or {}
            if info.get("raised_exception"):
                raise SuiteMismatchError(f"rule '{rule}': GX raised {info.get('exception_message')}")
            counts = result.result or {}
            unexpected = counts.get("unexpected_count")
            outcomes.append(
                ExpectationOutcome(
                    rule=rule,
                    expectation_type=config.type,
                    column=config.kwargs.get("column"),
                    success=bool(result.success),
                    element_count=counts.get("element_count"),
                    unexpected_count=unexpected,
                    expected_unexpected_count=expected[rule],
                    agrees=unexpected == expected[rule],
                )
            )
        wrong = [outcome for outcome in outcomes if not outcome.agrees]
        if wrong:
            detail = ", ".join(
                f"{o.rule}: GX {o.unexpected_count} vs mask {o.expected_unexpected_count}" for o in wrong
            )
            raise SuiteMismatchError(f"row masks disagree with Great Expectations ({detail})")
        return outcomes
