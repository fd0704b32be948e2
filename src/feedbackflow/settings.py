"""Typed settings loaded from ``params.yaml``.

Every section of ``params.yaml`` maps to one model below. Unknown keys are rejected with their dotted name so a typo
fails loudly instead of being silently ignored. The models state types, bounds and descriptions, never a value: every
key is required, so ``params.yaml`` is the one place a value lives (a missing key fails with its dotted name too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class SettingsError(ValueError):
    """``params.yaml`` is missing, unreadable or holds an invalid or unknown key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseSettings(_Section):
    seed: int


class S3SourceSettings(_Section):
    """An S3 bucket prefix (AWS or any S3-compatible endpoint); credentials come from the environment only."""

    bucket: str
    prefix: str
    endpoint_url: str | None = Field(description="e.g. http://minio:9000; default: AWS or AWS_ENDPOINT_URL")


class PostgresSourceSettings(_Section):
    """A PostgreSQL table or query read incrementally on a watermark; the DSN comes from the environment only."""

    table: str | None = Field(description="schema.table to read")
    query: str | None = Field(description="a SELECT to read instead of a table (no trailing semicolon)")
    watermark_columns: list[str] = Field(min_length=1)
    batch_rows: int = Field(ge=1, description="rows per raw batch file")
    lookback_seconds: float = Field(
        ge=0,
        description="re-read rows whose first watermark column (a timestamp) lies this far before the last one "
        "ingested, so late commits are not lost; rows already ingested (same id and timestamp) are skipped; 0: off",
    )
    id_column: str = Field(description="the row's key: with the timestamp it identifies one version of a row")

    @model_validator(mode="after")
    def _one_source(self) -> PostgresSourceSettings:
        if self.table and self.query:
            raise ValueError("set either table or query, not both")
        return self


class RetrySettings(_Section):
    """Bounded retries of an unreachable source (S3 endpoint, PostgreSQL server) inside the ingest stage."""

    attempts: int = Field(ge=1, description="tries of one source operation before the stage fails")
    initial_delay_seconds: float = Field(ge=0, description="wait after the first failure; doubles each time")
    max_delay_seconds: float = Field(ge=0, description="longest wait between two tries")
    timeout_seconds: float = Field(gt=0, description="connect timeout of one try")


class IngestSettings(_Section):
    source: Literal["folder", "s3", "postgres"]
    landing_dir: str
    patterns: list[str]
    complete_when: Literal["stable", "marker"] = Field(
        description="folder source: take a file once its size and mtime stay the same for settle_seconds (stable), "
        "or once a '<name>.done' file sits beside it (marker)"
    )
    settle_seconds: float = Field(ge=0, description="stable: how long size and mtime must stay unchanged")
    s3: S3SourceSettings
    postgres: PostgresSourceSettings
    retry: RetrySettings

    @model_validator(mode="after")
    def _source_configured(self) -> IngestSettings:
        if self.source == "s3" and not self.s3.bucket:
            raise ValueError("source s3 needs ingest.s3.bucket")
        if self.source == "postgres" and not (self.postgres.table or self.postgres.query):
            raise ValueError("source postgres needs ingest.postgres.table or ingest.postgres.query")
        return self


SOURCE_OVERRIDE_ENV = "FEEDBACKFLOW_INGEST_SOURCE"


def with_source_override(ingest: IngestSettings, override: str | None) -> IngestSettings:
    """``ingest`` with its source replaced by a run's override (the ``source`` Param of a manual run).

    ``s3://bucket/prefix`` reads that S3 prefix (endpoint as configured), ``postgres:<table>`` that table (DSN as
    configured), anything else is a landing folder. Empty: ``ingest`` unchanged.

    Raises:
        SettingsError: the override names no bucket or no table.
    """
    if not override:
        return ingest
    if override.startswith("s3://"):
        bucket, _, prefix = override.removeprefix("s3://").partition("/")
        if not bucket:
            raise SettingsError(f"source override '{override}': no bucket (use s3://bucket/prefix)")
        s3 = ingest.s3.model_copy(update={"bucket": bucket, "prefix": prefix})
        return ingest.model_copy(update={"source": "s3", "s3": s3})
    if override.startswith("postgres:"):
        table = override.removeprefix("postgres:").strip()
        if not table:
            raise SettingsError(f"source override '{override}': no table (use postgres:<schema.table>)")
        postgres = ingest.postgres.model_copy(update={"table": table, "query": None})
        return ingest.model_copy(update={"source": "postgres", "postgres": postgres})
    return ingest.model_copy(update={"source": "folder", "landing_dir": override})


class ValidateSettings(_Section):
    taxonomy: str
    required_columns: list[str]
    channels: list[str]
    min_text_chars: int = Field(ge=1)
    max_text_chars: int = Field(ge=1)
    max_quarantine_share: float = Field(ge=0.0, le=1.0)
    languages: list[str] = Field(description="allowed values of an optional language")
    max_future_seconds: float = Field(ge=0, description="clock skew allowed before created_at is 'in the future'")
    volume_window: int = Field(ge=1, description="recent deliveries the volume band is learned from")
    volume_min_history: int = Field(ge=1, description="deliveries needed before the volume band is checked")
    volume_band: tuple[float, float] = Field(description="allowed rows as factors of the recent median")
    volume_accepted: list[int] = Field(
        description="delivery sequences whose anomalous volume an operator reviewed and accepted"
    )
    batches_accepted: list[str] = Field(
        description="batch ids an operator reviewed and accepted although they broke file_readable, required_columns "
        "or max_quarantine_share (otherwise such a batch fails every run until re-delivered fixed under its name)"
    )
    min_rows_per_label: int = Field(ge=0, description="accepted labelled rows each taxonomy label needs; 0: off")
    chunk_rows: int = Field(
        ge=1, description="rows validate holds at once while it reads the raw history (memory bound)"
    )
    gx_passing_rows: int | None = Field(
        ge=0, description="GX re-checks every flagged row plus this many passing rows; null: every row"
    )
    data_docs_s3: str | None = Field(pattern=r"^s3://[^/]+", description="s3://bucket/prefix for Data Docs")

    @model_validator(mode="after")
    def _bounds(self) -> ValidateSettings:
        if self.min_text_chars > self.max_text_chars:
            raise ValueError("min_text_chars must not exceed max_text_chars")
        if not 0 <= self.volume_band[0] <= self.volume_band[1]:
            raise ValueError("volume_band must be [low, high] with 0 <= low <= high")
        return self


class AnonymiseSettings(_Section):
    language: str = Field(description="language of the feedback texts (spaCy and Presidio)")
    spacy_model: str = Field(description="installed spaCy pipeline or model folder")
    entities: list[str] = Field(description="kinds of personal data to find and replace; remove one to switch it off")
    phone_regions: list[str] = Field(
        description="regions (ISO 3166 alpha-2) whose national phone forms are read; +CC numbers of any country "
        "are always read"
    )
    score_threshold: float = Field(ge=0.0, le=1.0, description="lowest recognizer score that counts")
    second_opinion: bool = Field(
        description="leak gate: re-scan the output with Presidio's unmodified default recognizers and a title-cased "
        "NER pass (independent of the first scan's filters)"
    )
    batch_size: int = Field(ge=1, description="texts per spaCy batch")
    n_process: int = Field(
        ge=1,
        description="processes that anonymise and gate chunks of rows in parallel; each loads its own models (about "
        "0.8 GiB)",
    )
    part_rows: int | None = Field(
        ge=1,
        description="rows per part at most: a larger delivery batch is cut into parts of this many rows, so shards "
        "can share a night that is one large file; null: one part per batch",
    )
    max_held_share: float = Field(
        ge=0.0,
        le=1.0,
        description="leak gate: share of rows in which a planted value is found or the second scan still finds "
        "personal data; they are held back (restricted storage, with the entity types and the reason) and the run "
        "goes on; above it the stage fails",
    )
    operator: Literal["placeholder", "pseudonym"] = Field(
        description="how a finding is replaced unless `operators` names its entity"
    )
    operators: dict[str, Literal["placeholder", "pseudonym"]] = Field(
        description="per-entity operator, overriding `operator`"
    )
    pseudonym_hex_chars: int = Field(ge=6, le=12, description="hex digits of a keyed pseudonym token")
    canary_file: str | None = Field(
        description="JSON of planted values ({entity: [value, ...]}) the leak gate checks for; kept in restricted "
        "storage; a missing file means no planted values to check"
    )
    languages: list[str] = Field(
        min_length=1,
        description="languages (ISO 639-1) the configured detectors read; a row identified as written in another is "
        "held back with its language as the reason",
    )
    language_hold_below: float = Field(
        gt=0.0,
        lt=1.0,
        description="a row is held back when the language identifier gives the covered languages together less "
        "than this probability (measured: docs/privacy.md, Languages)",
    )
    language_min_letters: int = Field(
        ge=0, description="rows with fewer letters than this are never held back for their language (too short to tell)"
    )
    detector: bool = Field(
        description="run the learned name and location detector (models/detector, the detector stage) beside spaCy"
    )
    detector_threshold: float | None = Field(
        ge=0.0,
        le=1.0,
        description="the detector's probability threshold; null: the one the detector stage chose on dev",
    )

    @model_validator(mode="after")
    def _operators_name_entities(self) -> AnonymiseSettings:
        unknown = sorted(set(self.operators) - set(self.entities))
        if unknown:
            raise ValueError(f"operators names entities not in anonymise.entities: {unknown}")
        if self.language not in self.languages:
            raise ValueError(f"languages {self.languages} must include the detectors' language {self.language!r}")
        return self

    def operator_for(self, entity: str) -> str:
        """The operator (``placeholder`` or ``pseudonym``) that replaces values of ``entity``."""
        return self.operators.get(entity, self.operator)


class DetectorSettings(_Section):
    base_model: str = Field(
        description="encoder fine-tuned as the token classifier (folder, model package or hub name)"
    )
    corpora: list[str] = Field(
        min_length=1, description="folders of human-labelled corpora with train.jsonl and dev.jsonl (and test.jsonl)"
    )
    max_length: int = Field(ge=8, le=512, description="sub-words per training sentence and per inference window")
    epochs: int = Field(ge=1, description="epochs at most; the best by dev F2 is kept")
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0.0)
    warmup_ratio: float = Field(ge=0.0, lt=1.0)
    thresholds: list[float] = Field(min_length=1, description="probability thresholds tried on dev; the best F2 wins")
    device: Literal["auto", "cpu", "cuda"]
    num_threads: int = Field(ge=0, description="torch CPU threads; 0: torch's default")
    int8: bool = Field(
        description="run the detector's linear layers in int8 (torch dynamic quantisation) on the CPU; dev chooses "
        "the threshold with it as it runs, and detector.json records it"
    )


class SplitSettings(_Section):
    validation_share: float = Field(gt=0.0, lt=1.0)
    test_share: float = Field(gt=0.0, lt=1.0)
    min_test_rows_per_label: int = Field(
        ge=0, description="test rows each label is topped up to from its validation rows; 0: off"
    )

    @model_validator(mode="after")
    def _shares(self) -> SplitSettings:
        if self.validation_share + self.test_share >= 1.0:
            raise ValueError("validation_share + test_share must be below 1")
        return self


class TrainWindowSettings(_Section):
    """The training set's policy: a bounded window of the newest rows, every label kept, optionally a warm start."""

    max_rows: int | None = Field(
        ge=1, description="the newest this many training rows (by created_at, then id); null: no row limit"
    )
    max_days: float | None = Field(
        gt=0, description="rows created at most this many days before the newest row; null: no age limit"
    )
    min_rows_per_label: int = Field(
        ge=0, description="a label with fewer rows in the window gets its newest older rows up to this count"
    )
    replay_share: float = Field(
        ge=0,
        le=1,
        description="a seeded random sample of the older rows, this share of the window's size, is trained on too",
    )
    warm_start: bool = Field(
        description="start from the champion's weights (same label set) instead of train.base_model; none or "
        "another label set: the base model, with a log line"
    )


class TrainSettings(_Section):
    base_model: str
    max_length: int = Field(ge=8)
    epochs: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    eval_batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    warmup_ratio: float = Field(ge=0, lt=1)
    lr_scheduler: Literal["linear", "cosine"]
    device: Literal["auto", "cpu", "cuda"]
    num_threads: int = Field(ge=0, description="torch CPU threads; 0 keeps torch's default")
    gradient_accumulation_steps: int = Field(ge=1, description="batches per optimiser step")
    checkpoint_steps: int = Field(ge=1, description="save a resumable checkpoint every this many steps")
    shared_checkpoints: bool = Field(
        description="copy each checkpoint to the default DVC remote, so a retry on another worker resumes from it"
    )
    early_stopping_patience: int = Field(
        ge=0, description="stop after this many epochs without a better validation score; 0 never stops early"
    )
    early_stopping_metric: Literal["macro_f1", "accuracy"]
    class_weights: Literal["none", "balanced"] = Field(
        description="balanced: weight the loss by inverse label frequency (imbalanced labels)"
    )
    label_smoothing: float = Field(
        ge=0, lt=1, description="share of each target's probability spread over the other labels (0: off)"
    )
    layerwise_lr_decay: float = Field(
        gt=0,
        le=1,
        description="learning rate of each encoder layer = the one above's x this (embeddings lowest); 1: one rate",
    )
    rdrop_alpha: float = Field(
        ge=0, description="R-Drop: weight of the symmetric KL between two dropout passes of a batch (0: off)"
    )
    ema_decay: float = Field(
        ge=0,
        lt=1,
        description="weight averaging: evaluate, checkpoint and save an exponential moving average of the weights "
        "with this decay per optimiser step (0: off)",
    )
    teacher: list[str] = Field(
        description="distillation: fine-tuned classifier folders (same taxonomy) whose mean logits on the training "
        "rows are soft targets; empty: off"
    )
    distill_alpha: float = Field(
        ge=0, le=1, description="weight of the teacher's soft targets; 1 - this weighs the hard labels"
    )
    distill_temperature: float = Field(gt=0, description="softmax temperature of teacher and student in the KL")
    torch_compile: bool = Field(description="compile the model with torch.compile (pays off on long GPU runs)")
    full_determinism: bool = Field(
        description="deterministic kernels (torch.use_deterministic_algorithms); slower on GPUs"
    )
    launcher: Literal["python", "torchrun", "accelerate"] = Field(
        description="torchrun/accelerate: one process per GPU (DDP) when num_gpus > 1"
    )
    num_gpus: int = Field(ge=1, description="GPUs one training uses (processes started by the launcher)")
    window: TrainWindowSettings


class EvaluateSettings(_Section):
    min_accuracy: float = Field(ge=0, le=1)
    min_macro_f1: float = Field(ge=0, le=1)
    min_in_scope_coverage: float = Field(
        ge=0,
        le=1,
        description="share of in-scope test rows the challenger must accept (not answer unknown); below it too much "
        "feedback would go to review (docs/registry-and-gate.md)",
    )
    min_improvement: float = Field(description="challenger macro-F1 minus champion macro-F1 must reach this")
    confidence: float = Field(
        gt=0.5, lt=1, description="confidence level of the paired bootstrap interval of the macro-F1 difference"
    )
    bootstrap_resamples: int = Field(ge=100, description="paired bootstrap resamples of the test rows")
    require_significant_gain: bool = Field(
        description="promote only when the interval lies above 0 (significantly better), not merely not worse"
    )
    group_test: Literal["tarone", "holm", "threshold"] = Field(
        description="per intent and channel, block on a drop over max_class_drop that is credible (one-sided exact "
        "McNemar at 1 - confidence, corrected over all groups by Tarone or Holm), or on any such drop in groups of "
        "min_support test rows (threshold: no statistics)"
    )
    min_support: int = Field(ge=1, description="threshold test only: groups with fewer test rows are not gated")
    max_class_drop: float = Field(ge=0, le=1, description="F1 loss of an intent or channel that counts as a drop")
    require_approval: bool = Field(description="a human approves (Airflow ApprovalOperator) before promote")
    approval_timeout_hours: float = Field(
        gt=0, lt=24, description="unanswered approvals resolve as Reject after this long, before the next night"
    )


class OutOfScopeSettings(_Section):
    """The ``unknown`` decision: calibrated scores, a threshold chosen on validation, out-of-scope rows."""

    label: str = Field(
        min_length=1,
        description="label value of out-of-scope rows: accepted by validate, used as negatives (or as a class when "
        "the taxonomy lists it), never counted as an intent",
    )
    method: Literal["auto", "msp", "energy"] = Field(
        description="out-of-scope score: max softmax probability, energy, or auto (chosen on validation)"
    )
    target_precision: float = Field(
        gt=0, le=1, description="share of accepted (not unknown) validation predictions that must be right"
    )
    calibration_bins: int = Field(ge=2, description="confidence bins of the expected calibration error")


class LabellingSettings(_Section):
    """The review loop: which anonymised rows go to reviewers each night, and where (Label Studio or files)."""

    budget: int = Field(ge=0, description="rows sent for review per night at most (0: the loop is off)")
    unknown_share: float = Field(
        ge=0, le=1, description="share of the budget the champion's `unknown` rows may take (least margin first)"
    )
    qc_share: float = Field(
        ge=0, le=1, description="share of the budget for a seeded random sample of confident rows (quality control)"
    )
    newest_batches: int = Field(ge=1, description="rows of this many newest deliveries are candidates")
    label_studio_url: str | None = Field(
        description="Label Studio server, e.g. http://127.0.0.1:8080 (token: LABEL_STUDIO_API_KEY); null: import "
        "JSON written to data/labelling/import/, export JSON read from data/labelling/export/"
    )
    project_title: str = Field(min_length=1, description="Label Studio project, created on first use")
    out_of_scope_choice: str = Field(min_length=1, description="the reviewers' choice that becomes oos.label")

    @model_validator(mode="after")
    def _shares_fit(self) -> LabellingSettings:
        if self.unknown_share + self.qc_share > 1:
            raise ValueError("unknown_share + qc_share must be at most 1")
        return self


class RetrainPolicySettings(_Section):
    """When failed drift tests request a retraining run (the drift_monitor DAG)."""

    min_new_labelled_rows: int = Field(
        ge=0, description="labelled rows the champion has not trained on needed to retrain; fewer: alert"
    )
    cooldown_hours: float = Field(ge=0, description="no new retraining request this soon after the last one")
    max_per_day: int = Field(ge=0, description="retraining requests per UTC day at most (0: never retrain)")


class MonitorSettings(_Section):
    drift_share: float = Field(gt=0, le=1, description="share of drifted columns that fails the dataset test")
    p_value: float = Field(
        gt=0,
        lt=1,
        description="categorical columns (label, channel, prediction) drift "
        "when the chi-square homogeneity p-value is below this",
    )
    embedding_auc: float = Field(
        gt=0.5,
        le=1,
        description="embedding drift fails when the domain "
        "classifier's ROC AUC on the sentence embeddings exceeds this",
    )
    min_accuracy: float = Field(
        ge=0,
        le=1,
        description="champion accuracy on newly labelled feedback below this fails the quality test (0: off)",
    )
    max_reference_rows: int = Field(
        ge=100, description="reference rows sampled (seeded) from the champion's training data"
    )
    max_current_rows: int = Field(ge=100, description="rows sampled (seeded) from a larger current batch")
    embedding_model: str = Field(
        description="sentence encoder: 'champion' (the champion's own encoder, in the forward pass that predicts: "
        "one pass instead of two) or a model folder or package (a second pass)"
    )
    embedding_batch_size: int = Field(ge=1)
    inference_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        description="precision of the champion pass that embeds and predicts: bfloat16 (CPU autocast) halves the "
        "warm check's main cost on CPUs with native bf16 (AVX512-BF16/AMX) and agrees with float32 on >= 99 % of "
        "labels (benchmarks/bench_drift_encoder.py); elsewhere bf16 is emulated and slower. auto: bfloat16 where "
        "the CPU has native bf16, else float32"
    )
    inference_threads: int = Field(
        ge=0,
        description="torch threads of the champion pass (0: torch's default, one per core). 1: on a 2-core worker "
        "shared with other tasks, two OpenMP threads waiting on each other took 2.7-5x longer than one; alone, two "
        "save ~40 % of a pass (benchmarks/bench_drift_encoder.py)",
    )
    quarantine_warning_share: float = Field(
        ge=0, le=1, description="a batch quarantining more than this share of rows sends an alert"
    )
    workspace: str = Field(description="Evidently workspace folder (project per model)")
    retrain: RetrainPolicySettings


class DriftMonitorDagSettings(_Section):
    """When and how persistently the ``drift_monitor`` DAG runs (besides after every recorded retraining run)."""

    schedule: str = Field(description="cron expression of the daily drift check")
    timezone: str = Field(description="timezone of the schedule (IANA name)")
    retries: int = Field(ge=0, description="retries of a failed drift_monitor task")


class FeedbackRetrainDagSettings(_Section):
    """The ``feedback_retrain`` DAG, which only queues a ``nightly_retrain`` run: short tasks, quick failure."""

    retries: int = Field(ge=0, description="retries of a failed feedback_retrain task")
    timeout_minutes: float = Field(gt=0, description="execution_timeout of every feedback_retrain task")


class DagSettings(_Section):
    """The ``nightly_retrain`` DAG's knobs, and one subsection per other DAG."""

    schedule: str = Field(description="cron expression of the nightly run")
    timezone: str = Field(description="timezone of the schedule (IANA name)")
    retries: int = Field(ge=0)
    retry_delay_minutes: float = Field(ge=0)
    train_queue: str = Field(description="Celery queue of the train task; the local executor ignores it")
    train_pool: str = Field(description="Airflow pool of the train task: one slot per GPU")
    train_pool_slots: int = Field(ge=1, description="slots of the train pool: the number of GPUs")
    task_timeout_minutes: float = Field(
        gt=0, description="execution_timeout of every task but train: a hung task fails (and retries)"
    )
    train_timeout_minutes: float = Field(
        gt=0, description="execution_timeout of the train task: a hung training frees its gpu pool slot"
    )
    anonymise_shards: int = Field(
        ge=1,
        description="mapped anonymise_shard tasks that share a night's new batches over the workers before the "
        "anonymise task takes their parts (1: anonymise alone, no shard tasks)",
    )
    paused_upon_creation: bool = Field(
        description="create the DAGs paused (nightly_retrain, drift_monitor and feedback_retrain then wait until "
        "someone unpauses them)"
    )
    drift_monitor: DriftMonitorDagSettings
    feedback_retrain: FeedbackRetrainDagSettings


class ErasureSettings(_Section):
    """Erasure requests (``feedbackflow forget``): where hashes and certificates live, what happens to models."""

    subjects_file: str = Field(
        description="keyed hashes of every erased subject's identifiers (never the values): validate quarantines a "
        "re-delivery carrying them under the rule erased_subject"
    )
    records_dir: str = Field(description="certificates (JSON and HTML) and the erasure log, one pair per request")
    phone_region: str = Field(min_length=2, max_length=2, description="region of phone numbers written without +")
    policy: Literal["retrain_next_run", "retire_now"] = Field(
        description="models trained on erased rows: retrained without them on the next run and retired after the "
        "grace period, or retired at once"
    )
    grace_days: float = Field(ge=0, description="retrain_next_run: days before affected versions are retired")
    require_approval: bool = Field(description="the erasure_request DAG waits for a person's approval (HITL)")
    approval_timeout_hours: float = Field(gt=0, description="unanswered approval: Reject, nothing is erased")
    lock_pool: str = Field(
        description="Airflow pool (one slot) of the two guards that keep an erasure and a nightly run apart: "
        "erasure_request's wait_for_night and nightly_retrain's wait_for_erasure"
    )
    wait_hours: float = Field(gt=0, description="how long either guard waits for the other run before it fails")
    wait_poke_seconds: int = Field(ge=1, description="how often a waiting guard looks again (reschedule mode)")


class Settings(_Section):
    base: BaseSettings
    ingest: IngestSettings
    validate_: ValidateSettings = Field(alias="validate")
    anonymise: AnonymiseSettings
    detector: DetectorSettings
    split: SplitSettings
    train: TrainSettings
    evaluate: EvaluateSettings
    oos: OutOfScopeSettings
    labelling: LabellingSettings
    monitor: MonitorSettings
    dag: DagSettings
    erasure: ErasureSettings

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _describe(error: ValidationError, source: Path) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'")
        elif item["type"] == "missing":
            lines.append(f"{source}: missing key '{key}'")
        else:
            lines.append(f"{source}: invalid value for '{key}': {item['msg']}")
    return "\n".join(lines)


def parse_settings(data: dict, source: Path = Path("params.yaml")) -> Settings:
    """Validate a params mapping into :class:`Settings`, naming any bad, unknown or missing key."""
    try:
        return Settings.model_validate(data or {})
    except ValidationError as error:
        raise SettingsError(_describe(error, source)) from None


def load_settings(path: str | Path) -> Settings:
    """Read and validate ``params.yaml``.

    Raises:
        SettingsError: the file is missing, lacks a key or holds an unknown or invalid one.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{path}: not found; run from the project root or set FEEDBACKFLOW_PROJECT_DIR") from None
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not valid YAML: {error}") from None
    if data is not None and not isinstance(data, dict):
        raise SettingsError(f"{path}: top level must be a mapping of sections")
    return parse_settings(data or {}, path)
