"""The feedbackflow command line: one command per stage, plus demo data, run summaries and the registry.

Each stage command is what dvc.yaml runs (dvc repro runs them in order and skips those whose inputs did not
change); the Airflow tasks run the same stages through DVC. The project is the folder named by
FEEDBACKFLOW_PROJECT_DIR, else the nearest folder at or above the current one with params.yaml and dvc.yaml.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import FeedbackflowError
from feedbackflow.settings import Settings, SettingsError, load_settings
from feedbackflow.stages._registry import stage_modules, stage_summary
from feedbackflow.storage.dvc import StageSpec, pipeline

app = typer.Typer(
    help="\n\n".join(" ".join(part.split()) for part in __doc__.split("\n\n")),
    no_args_is_help=True,
    add_completion=False,
)


def _exit_codes() -> str:
    """Each exit code a command may end with and what it means (from the error classes: one owner)."""
    errors, todo = [], [FeedbackflowError]
    while todo:
        error = todo.pop()
        todo.extend(error.__subclasses__())
        if error.__module__ == FeedbackflowError.__module__ and error is not FeedbackflowError:
            errors.append((error.exit_code, (error.__doc__ or "").strip().split("\n")[0].split(";")[0]))
    lines = [f"{code}: {meaning}" for code, meaning in sorted(set(errors))]
    return "Exit codes: 0: done. " + " ".join(f"{line.rstrip('.')}." for line in lines)


def _stage_help(name: str, spec: StageSpec | None) -> str:
    """A stage command's help: what it does (its module's docstring), what it reads and writes (dvc.yaml)."""
    summary = stage_summary(name)
    parts = [summary[:1].upper() + summary[1:]]
    if spec is None:
        parts.append("Not a dvc.yaml stage: run it after evaluate (the Airflow DAG does).")
    else:
        data = [dep.replace("${", "<").replace("}", ">") for dep in spec.deps if not dep.startswith("src/")]
        parts += [f"Reads: {', '.join(data) or 'its source only'}.", f"Writes: {', '.join(spec.outs)}."]
    return "\n\n".join([*parts, _exit_codes()])


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def _run_stage(name: str, function: str = "run", command: str | None = None, **arguments: object) -> None:
    """Run ``function`` of stage module ``name``; its errors as ``error in <command>: ...`` and their exit codes."""
    _setup_logging()
    paths = ProjectPaths.discover()
    try:
        settings = load_settings(paths.params)
        module = importlib.import_module(f"feedbackflow.stages.{name}")
        result = getattr(module, function)(settings, paths, **arguments)
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(78) from None
    except FeedbackflowError as error:
        typer.echo(f"error in {command or name}: {error}", err=True)
        raise typer.Exit(error.exit_code) from None
    typer.echo(json.dumps(result, indent=2, sort_keys=True, default=str))


@app.command(name="anonymise-shard")
def anonymise_shard(
    shard: Annotated[int, typer.Option(min=1, help="Which shard, from 1.")],
    of: Annotated[int, typer.Option(min=1, help="How many shards the night's new batches are cut into.")],
) -> None:
    """Anonymise one shard of the night's new batches into data/anonymise_shards/ (the DAG's mapped anonymise_shard
    tasks run one per worker with dag.anonymise_shards above 1); the anonymise stage then takes the parts."""
    if shard > of:
        typer.echo(f"error: --shard {shard} is beyond --of {of}", err=True)
        raise typer.Exit(64)
    _run_stage("anonymise", "run_shard", "anonymise-shard", shard=shard - 1, shards=of)


def _register(name: str, spec: StageSpec | None) -> None:
    def command() -> None:
        _run_stage(name)

    command.__doc__ = _stage_help(name, spec)
    app.command(name=name)(command)


def _register_stages() -> None:
    """One command per stage module, in dvc.yaml's order (the modules dvc.yaml does not run come last)."""
    dvc_yaml = ProjectPaths.discover().dvc_yaml
    try:
        specs = pipeline(dvc_yaml) if dvc_yaml.is_file() else {}
    except (OSError, KeyError, TypeError, ValueError, FeedbackflowError):  # a broken dvc.yaml: dvc itself says why
        specs = {}
    modules = stage_modules()
    for name in [*(name for name in specs if name in modules), *(name for name in modules if name not in specs)]:
        _register(name, specs.get(name))


_register_stages()


def _project_settings(paths: ProjectPaths) -> Settings:
    """The project's params.yaml, the one owner of every value; exits 78 (config) when it cannot be read."""
    try:
        return load_settings(paths.params)
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(78) from None


@app.command()
def generate(
    landing: Annotated[
        Path | None, typer.Option(help="Landing folder that receives the batch files. Default: ingest.landing_dir.")
    ] = None,
    corpus: Annotated[Path, typer.Option(help="Labelled CSV to draw messages from.")] = Path(
        "data/banking77/train.csv"
    ),
    text_column: Annotated[str, typer.Option(help="Text column of the corpus.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column of the corpus.")] = "category",
    nights: Annotated[int, typer.Option(min=1, help="The last night to build (nights are numbered from 1).")] = 1,
    first_night: Annotated[
        int, typer.Option(min=1, help="Write batches from this night on (earlier ones skipped).")
    ] = 1,
    rows_per_night: Annotated[int, typer.Option(min=1, help="Messages per batch.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same batches.")] = 42,
    pii_share: Annotated[float, typer.Option(help="Share of messages carrying personal data.")] = 0.1,
    dirt_share: Annotated[float, typer.Option(help="Share of rows made invalid on purpose.")] = 0.01,
    drift_from_night: Annotated[int, typer.Option(help="First night whose intent mix shifts.")] = 3,
    oos_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of out-of-scope messages (not banking), doubled from drift.")
    ] = 0.02,
    canaries: Annotated[
        Path | None,
        typer.Option(
            help="Where to list the planted personal values (for leak tests). Default: anonymise.canary_file."
        ),
    ] = None,
) -> None:
    """Generate demo feedback batches from a labelled corpus (BANKING77 by default) into the landing folder."""
    from feedbackflow.demo.generate import generate as build
    from feedbackflow.demo.generate import load_corpus, merge_canaries, write_batches

    paths = ProjectPaths.discover()
    settings = _project_settings(paths)
    landing = landing or paths.root / settings.ingest.landing_dir
    if canaries is None and settings.anonymise.canary_file is None:
        typer.echo(
            "error: anonymise.canary_file is null: pass --canaries to say where to list planted values", err=True
        )
        raise typer.Exit(78)
    canaries = canaries or paths.root / str(settings.anonymise.canary_file)
    if first_night > nights:  # else nothing is written, yet the run would plant and list values
        typer.echo(
            f"error: --first-night {first_night} is after the last night (--nights {nights}): nothing to write; "
            f"nights {first_night} to {first_night + 1} are --first-night {first_night} --nights {first_night + 1}",
            err=True,
        )
        raise typer.Exit(2)
    data = build(
        load_corpus(corpus, text_column, label_column),
        nights=nights,
        rows_per_night=rows_per_night,
        seed=seed,
        pii_share=pii_share,
        dirt_share=dirt_share,
        drift_from_night=drift_from_night,
        oos_share=oos_share,
        oos_label=settings.oos.label,
    )
    data.batches = data.batches[first_night - 1 :]
    try:
        # the canaries first: a batch on disk must never carry planted values the leak gate does not know
        listed = merge_canaries(canaries, data.canaries)
        written = write_batches(data, landing)
    except (FileExistsError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    planted = sum(len(values) for values in data.canaries.values())
    total = sum(len(values) for values in listed.values())
    typer.echo(
        f"wrote {len(written)} batch(es) to {landing}; {planted} personal values planted, {total} listed in {canaries}"
    )


@app.command()
def summarise(run_id: Annotated[str, typer.Option(help="Run id to record.")] = "manual") -> None:
    """Write reports/run_summary.json from the stages' reports and the DVC hashes of this run."""
    from feedbackflow.orchestration.summary import write_summary

    _setup_logging()
    summary = write_summary(ProjectPaths.discover(), run_id)
    typer.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))


registry_app = typer.Typer(
    help="The model registry shared by every worker (in the DVC remote): list, show, rollback, pull, restore.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")


def _registry_call(action, *args):  # type: ignore[no-untyped-def]
    """Run a registry action, turning a FeedbackflowError into its message and exit code."""
    from feedbackflow.storage.registry import Registry

    paths = ProjectPaths.discover()
    try:
        return action(paths, Registry.open(paths.root), *args)
    except FeedbackflowError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None


@registry_app.command("list")
def registry_list() -> None:
    """Every version (champion, archived, rejected) with its macro-F1, run and who decided."""

    def show(paths: ProjectPaths, registry) -> None:  # type: ignore[no-untyped-def]
        state = registry.head()
        typer.echo(f"registry {registry.store.location} (generation {state['generation']})")
        typer.echo(f"{'version':<8} {'status':<9} {'macro_f1':>8}  {'run id':<40} decided by")
        for entry in state["versions"]:
            by = entry.get("approved_by") if entry["status"] != "rejected" else entry.get("rejected_by")
            typer.echo(
                f"{entry['version']:<8} {entry['status']:<9} {entry['metrics']['macro_f1']:>8.4f}  "
                f"{entry.get('run_id') or '-':<40} {by or '-'}"
            )

    _registry_call(show)


@registry_app.command("show")
def registry_show(
    version: Annotated[str, typer.Argument(help="A version, e.g. v3.")],
    report: Annotated[bool, typer.Option(help="Print the version's gate report (Markdown) too.")] = True,
) -> None:
    """One version: hashes (model, data, params), metrics, gate decision, status history and its gate report."""

    def show(paths: ProjectPaths, registry) -> None:  # type: ignore[no-untyped-def]
        from feedbackflow.storage.registry import find_version

        state = registry.head()
        entry = find_version(state, version)
        entry["events"] = [event for event in state["events"] if event["version"] == version]
        typer.echo(json.dumps(entry, indent=2, sort_keys=True))
        link = (entry.get("gate") or {}).get("report", {}).get("markdown")
        if report and link:
            typer.echo("\n" + registry.read_report(link))

    _registry_call(show)


@registry_app.command("rollback")
def registry_rollback(
    version: Annotated[str, typer.Argument(help="An earlier champion (status archived).")],
    reason: Annotated[str, typer.Option(help="Why: recorded in the registry.")],
    by: Annotated[str | None, typer.Option(help="Who rolls back (default: the login name).")] = None,
) -> None:
    """Make an earlier champion the champion again in one step; the next evaluate compares against it."""
    import getpass

    def roll(paths: ProjectPaths, registry) -> None:  # type: ignore[no-untyped-def]
        from feedbackflow.storage.registry import rollback, write_local_copies

        entry = rollback(registry, version, reason, by or getpass.getuser())
        write_local_copies(paths, registry.head())
        typer.echo(f"{entry['version']} is the champion again (model sha256 {entry['model_sha256'][:12]}...)")

    _registry_call(roll)


@registry_app.command("pull")
def registry_pull() -> None:
    """Take the champion from the shared registry: registry/champion.json and models/champion (by hash)."""
    _setup_logging()

    def pull(paths: ProjectPaths, registry) -> None:  # type: ignore[no-untyped-def]
        from feedbackflow.storage.dvc import Dvc
        from feedbackflow.storage.registry import sync_champion

        entry = sync_champion(paths, Dvc(paths.root))
        typer.echo(f"champion: {entry['version'] if entry else 'none yet'}")

    _registry_call(pull)


@registry_app.command("restore")
def registry_restore(
    generation: Annotated[int, typer.Argument(help="An intact earlier snapshot (see the corruption message).")],
    by: Annotated[str | None, typer.Option(help="Who restores (default: the login name).")] = None,
) -> None:
    """Write an earlier registry snapshot again as the newest one (after a corrupt head); nothing is deleted."""
    import getpass

    def put_back(paths: ProjectPaths, registry) -> None:  # type: ignore[no-untyped-def]
        from feedbackflow.storage.registry import restore

        state = restore(registry, generation, by or getpass.getuser())
        typer.echo(f"generation {generation} restored as generation {state['generation']}")

    _registry_call(put_back)


@app.command()
def experiment(
    run_id: Annotated[
        str | None, typer.Argument(help="An Airflow run id (e.g. scheduled__2026-11-30T02:00:00+00:00).")
    ] = None,
) -> None:
    """Map Airflow run ids to DVC experiment names: one run id, or every run kept in reports/runs/ with its status."""
    from feedbackflow.config import experiment_name
    from feedbackflow.io import read_json

    if run_id:
        typer.echo(experiment_name(run_id))
        return
    for path in sorted(ProjectPaths.discover().run_records.glob("*.json")):
        summary = read_json(path, {}) or {}
        saved = "saved" if summary.get("experiment") else "not saved"
        typer.echo(f"{summary.get('run_id', '?')}\t{path.stem}\t{saved}\t{summary.get('status', 'succeeded')}")


@app.command()
def remotes(
    general: Annotated[str, typer.Option(help="s3://bucket/prefix for anonymised data, splits, models, reports.")],
    restricted: Annotated[str, typer.Option(help="s3://other-bucket/prefix for raw, validated, quarantined data.")],
    endpoint_url: Annotated[str | None, typer.Option(help="MinIO or another S3-compatible endpoint.")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of both buckets.")] = None,
) -> None:
    """Point both DVC remotes at S3 (dvc remote modify --local): the same endpoint for both, separate buckets."""
    from feedbackflow.errors import FeedbackflowError
    from feedbackflow.storage.dvc import Dvc, remote_commands

    try:
        commands = remote_commands(general, restricted, endpoint_url, region)
    except FeedbackflowError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(78) from None
    dvc = Dvc(ProjectPaths.discover().root)
    for command in commands:
        dvc(*command)
    typer.echo(
        f"general -> {general}, restricted -> {restricted}" + (f" (endpoint {endpoint_url})" if endpoint_url else "")
    )


@app.command()
def pools() -> None:
    """Create the Airflow pools: the train task's (dag.train_pool, one slot per GPU) and the erasure guards'
    (erasure.lock_pool, one slot), in the metadata database."""
    from feedbackflow.orchestration.pools import create_pools

    _setup_logging()
    try:
        settings = load_settings(ProjectPaths.discover().params)
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(78) from None
    if settings.train.num_gpus > settings.dag.train_pool_slots:
        typer.echo(
            f"error: train.num_gpus ({settings.train.num_gpus}) exceeds dag.train_pool_slots "
            f"({settings.dag.train_pool_slots}): the train task could never get its pool slots",
            err=True,
        )
        raise typer.Exit(78)
    create_pools(settings.dag, settings.erasure)
    typer.echo(f"pool {settings.dag.train_pool}: {settings.dag.train_pool_slots} slot(s)")
    typer.echo(f"pool {settings.erasure.lock_pool}: 1 slot")


label_app = typer.Typer(
    help="The review loop (docs/labelling.md): send the rows the champion is least sure of to reviewers (Label "
    "Studio, or import JSON files), take their labels back as a delivery the next ingest validates.",
    no_args_is_help=True,
)
app.add_typer(label_app, name="label")


def _label_call(action: str) -> None:
    from feedbackflow.labelling import loop

    _setup_logging()
    paths = ProjectPaths.discover()
    settings = _project_settings(paths)
    try:
        result = getattr(loop, action)(settings, paths)
    except FeedbackflowError as error:
        typer.echo(f"error in label {action}: {error}", err=True)
        raise typer.Exit(error.exit_code) from None
    typer.echo(json.dumps(result, indent=2, sort_keys=True, default=str))


@label_app.command("push")
def label_push() -> None:
    """Select tonight's review batch (champion's unknown rows, least margin, a QC sample; labelling.budget) from the
    newest anonymised rows and send it to Label Studio, or write its import JSON to data/labelling/import/."""
    _label_call("push")


@label_app.command("pull")
def label_pull() -> None:
    """Take reviewers' labels back (Label Studio export, or export JSON in data/labelling/export/) as a delivery in
    <landing_dir>/review/ that the next ingest and validate take; ids reviewers disagree on are held in
    data/labelling/disputed.jsonl."""
    _label_call("pull")


@label_app.command("status")
def label_status() -> None:
    """The review loop per night: sent, labelled, disputed, turnaround, QC agreement, unknown share (JSON)."""
    from feedbackflow.labelling.metrics import review_loop

    typer.echo(json.dumps(review_loop(ProjectPaths.discover()), indent=2))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())


@app.command()
def dashboards(
    host: Annotated[str, typer.Option(help="Interface the Evidently UI listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the Evidently UI.")] = 8000,
) -> None:
    """Start Evidently's UI on the governance workspace (monitor.workspace): drift, quality, privacy over time."""
    import os
    import shutil

    from feedbackflow.monitoring.workspace import workspace_location

    paths = ProjectPaths.discover()
    try:
        location = workspace_location(load_settings(paths.params).monitor.workspace, paths.root)
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(78) from None
    if "://" not in location:
        Path(location).mkdir(parents=True, exist_ok=True)
    evidently = shutil.which("evidently") or str(Path(sys.executable).with_name("evidently"))
    typer.echo(f"Evidently UI on http://{host}:{port} (workspace {location})")
    os.execv(evidently, [evidently, "ui", "--workspace", location, "--host", host, "--port", str(port)])


@app.command()
def lineage(
    version: Annotated[str, typer.Argument(help="A model version of the registry, e.g. v3.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the chain as JSON.")] = False,
) -> None:
    """One model's lineage: source deliveries, data hashes, the run, the model, the gate and who decided."""

    def show(paths: ProjectPaths, registry) -> None:  # type: ignore[no-untyped-def]
        from feedbackflow.governance.chain import format_chain, model_chain

        chain = model_chain(paths, registry.head(), version)
        typer.echo(json.dumps(chain, indent=2, sort_keys=True) if as_json else format_chain(chain))

    _registry_call(show)


@app.command()
def forget(
    request_id: Annotated[str | None, typer.Option(help="The erasure request's id (named in the certificate).")] = None,
    email: Annotated[list[str] | None, typer.Option(help="The subject's e-mail address (repeatable).")] = None,
    phone: Annotated[list[str] | None, typer.Option(help="A phone number, in any format (repeatable).")] = None,
    customer_id: Annotated[list[str] | None, typer.Option(help="A customer or account id (repeatable).")] = None,
    name: Annotated[list[str] | None, typer.Option(help="The subject's name (repeatable).")] = None,
    requested_by: Annotated[str | None, typer.Option(help="Who asked (default: the login name).")] = None,
    approved_by: Annotated[str | None, typer.Option(help="Who approved, when approval is required.")] = None,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Instead of a request: retire the model versions whose erasure.grace_days have passed and delete "
            "their weights (the champion moves off them first). Run it daily, between nightly runs.",
        ),
    ] = False,
) -> None:
    """Erase one customer from every dataset, data version, DVC cache and remote; mark models; write a certificate.

    The identifiers are read from the options only and never written anywhere: the certificate, the logs and the
    erased-subjects list hold keyed hashes (key: FEEDBACKFLOW_ERASURE_KEY, else FEEDBACKFLOW_PSEUDONYM_KEY).
    See docs/erasure.md.
    """
    import getpass

    from feedbackflow.governance.erasure import ErasureRequest
    from feedbackflow.governance.erasure import forget as erase

    _setup_logging()
    paths = ProjectPaths.discover()
    settings = _project_settings(paths)
    if sweep:
        _sweep(paths, request_id)
        return
    if request_id is None:
        typer.echo("error: --request-id is required (or --sweep)", err=True)
        raise typer.Exit(64)
    identifiers = {"email": email or [], "phone": phone or [], "customer_id": customer_id or [], "name": name or []}
    request = ErasureRequest(request_id, identifiers, requested_by or getpass.getuser(), approved_by)
    try:
        certificate = erase(paths, settings, request)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(64) from None
    except FeedbackflowError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None
    typer.echo(json.dumps({key: certificate[key] for key in ("request_id", "state", "rows_removed")}, indent=2))
    if certificate["state"] != "done":
        raise typer.Exit(75)


def _sweep(paths: ProjectPaths, request_id: str | None) -> None:
    """``forget --sweep``: retire the versions past their grace period; exit 64 when a request id came with it."""
    from feedbackflow.governance.erasure_sweep import sweep

    if request_id is not None:
        typer.echo("error: --sweep takes no --request-id: it retires every version whose grace period ended", err=True)
        raise typer.Exit(64)
    typer.echo(json.dumps(sweep(paths), indent=2))


@app.command()
def restore(
    revision: Annotated[str, typer.Argument(help="A Git revision or a DVC experiment name (run-...).")],
) -> None:
    """Restore the data of an earlier version; refuses clearly when an erasure request deleted some of it."""
    from feedbackflow.governance.erasure_restore import restore as put_back

    paths = ProjectPaths.discover()
    settings = _project_settings(paths)
    try:
        outputs = put_back(paths, paths.root / settings.erasure.records_dir, revision)
    except FeedbackflowError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None
    typer.echo(f"restored {len(outputs)} outputs of {revision}")
