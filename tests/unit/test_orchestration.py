from airflow.sdk import Connection

from feedbackflow.config import experiment_name
from feedbackflow.orchestration.connections import aws_environment
from feedbackflow.orchestration.summary import output_hashes


def test_aws_connection_becomes_dvc_environment():
    connection = Connection(
        conn_id="aws_default",
        conn_type="aws",
        login="AKIDEXAMPLE",
        password="secret",
        extra='{"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-2"}',
    )
    assert aws_environment(connection) == {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }


def test_experiment_names_are_valid_git_refs():
    name = experiment_name("scheduled__2026-11-23T02:00:00+00:00")
    assert name == "run-scheduled__2026-11-23T02-00-00-00-00"
    assert not set(name) & set(" :~^?*[\\")


def test_output_hashes_from_lock():
    lock = {"stages": {"train": {"outs": [{"path": "models/challenger", "md5": "abc.dir"}]}}}
    assert output_hashes(lock) == {"models/challenger": "abc.dir"}


def test_postgres_connection_becomes_a_dsn_and_ingest_is_forced_for_unhashable_sources():
    from feedbackflow.orchestration.connections import postgres_environment
    from feedbackflow.orchestration.tasks import run_options
    from tests.helpers import params_settings

    connection = Connection(
        conn_id="feedback_db", conn_type="postgres", host="db", port=5433, login="ff", password="p w", schema="app"
    )
    assert postgres_environment(connection) == {
        "FEEDBACKFLOW_POSTGRES_DSN": "host=db port=5433 user=ff password='p w' dbname=app"
    }
    postgres = params_settings(ingest={"source": "postgres", "postgres": {"table": "t"}})
    assert run_options("ingest", None, postgres) == ({}, True)
    assert run_options("validate", None, postgres) == ({}, False)
    assert run_options("ingest", None, params_settings(ingest={"source": "folder"})) == ({}, False)


def test_stage_rules_name_exactly_the_stages_of_dvc_yaml():
    import yaml

    from feedbackflow.config import ProjectPaths
    from feedbackflow.orchestration.connections import CONNECTIONS
    from feedbackflow.orchestration.rules import STAGE_RULES

    stages = yaml.safe_load(ProjectPaths.discover().root.joinpath("dvc.yaml").read_text())["stages"]
    assert set(STAGE_RULES) == set(stages)
    assert {kind for rule in STAGE_RULES.values() for kind in rule.connections} <= set(CONNECTIONS)


def test_train_starts_from_the_base_model_file_while_warm_start_is_off(tmp_path):
    """train's start file says base model without touching the registry, so a promotion re-runs no training."""
    import json

    from feedbackflow.config import ProjectPaths
    from feedbackflow.orchestration.rules import STAGE_RULES
    from tests.helpers import write_params

    paths = ProjectPaths(tmp_path)
    write_params(tmp_path)  # the repository's params: warm start off, no DVC remote here to sync from
    STAGE_RULES["train"].before(paths, {})
    assert json.loads(paths.train_start.read_text()) == {"warm_start": False}
    stamp = paths.train_start.stat().st_mtime_ns
    STAGE_RULES["train"].before(paths, {})
    assert paths.train_start.stat().st_mtime_ns == stamp, "unchanged: not rewritten"
