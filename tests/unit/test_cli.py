"""The CLI: one command per stage, errors that say what to do with distinct exit codes."""

from typer.testing import CliRunner

from feedbackflow.cli import app
from tests.helpers import write_params

runner = CliRunner()


def test_every_stage_is_a_command():
    output = runner.invoke(app, ["--help"]).output
    for name in ("ingest", "validate", "anonymise", "split", "train", "evaluate", "promote", "monitor", "generate"):
        assert name in output


def test_unknown_params_key_exits_78_naming_the_key(tmp_path, monkeypatch):
    write_params(tmp_path, train={"learning_rat": 0.1})
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path))
    result = runner.invoke(app, ["split"])
    assert result.exit_code == 78
    assert "unknown key 'train.learning_rat'" in result.output


def test_bad_data_exits_65_without_traceback(tmp_path, monkeypatch):
    write_params(tmp_path, validate={"taxonomy": "labels.json"})
    (tmp_path / "labels.json").write_text('["a", "b"]')
    (tmp_path / "data" / "raw").mkdir(parents=True)
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path))
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 65, result.output
    assert "run ingest first" in result.output.lower()
    assert "Traceback" not in result.output
