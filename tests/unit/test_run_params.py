"""What a run's Params change: the ingest source, forced training, dry runs, and the conf feedback_retrain queues."""

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from feedbackflow.orchestration.tasks import retrain_request, run_options, run_trigger
from feedbackflow.settings import SettingsError, with_source_override
from tests.helpers import params_settings, section


def test_source_override_forms():
    base = section("ingest")
    assert with_source_override(base, None) is base
    s3 = with_source_override(base, "s3://campaign-bucket/2026/11")
    assert (s3.source, s3.s3.bucket, s3.s3.prefix) == ("s3", "campaign-bucket", "2026/11")
    table = with_source_override(base, "postgres:public.feedback")
    assert (table.source, table.postgres.table, table.postgres.query) == ("postgres", "public.feedback", None)
    folder = with_source_override(base, "/mnt/campaign")
    assert (folder.source, folder.landing_dir) == ("folder", "/mnt/campaign")
    with pytest.raises(SettingsError, match="no bucket"):
        with_source_override(base, "s3://")
    with pytest.raises(SettingsError, match="no table"):
        with_source_override(base, "postgres:")


def test_run_options_per_stage():
    folder = params_settings()

    def options(stage: str, params: dict | None) -> tuple[dict, bool]:
        return run_options(stage, params, folder)

    assert options("train", None) == ({}, False)
    assert options("train", {"force_retrain": True}) == ({}, True)
    assert options("evaluate", {"force_retrain": True}) == ({}, False)
    assert options("ingest", {"source": "s3://b/p"}) == ({"FEEDBACKFLOW_INGEST_SOURCE": "s3://b/p"}, True)
    assert options("anonymise", {"dry_run": True}) == ({}, False)
    for stage in ("split", "train", "evaluate", "monitor"):
        with pytest.raises(AirflowSkipException, match="dry run"):
            options(stage, {"dry_run": True})


def test_asset_event_carries_the_batch_hash_into_the_queued_run():
    event = SimpleNamespace(asset=SimpleNamespace(uri="feedbackflow://feedback/batch"), extra={"batch": "md5:9f2c"})
    conf = retrain_request({"reason": "", "force_retrain": False, "batch": None}, {"feedback_batch": [event]})
    assert conf["batch"] == "md5:9f2c"
    assert conf["reason"] == "asset event on feedbackflow://feedback/batch"
    person = retrain_request({"reason": "after the November campaign", "source": "s3://b/nov"}, None)
    assert person == {"reason": "after the November campaign", "source": "s3://b/nov"}
    summary = run_trigger(SimpleNamespace(run_type="manual"), {**conf, "dry_run": True})
    assert summary["batch"] == "md5:9f2c" and summary["params"]["dry_run"] is True
