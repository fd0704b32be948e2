"""The CLI: one command per stage, errors that say what to do with distinct exit codes."""

from pathlib import Path

from typer.testing import CliRunner

from feedbackflow.cli import app
from tests.helpers import write_params

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_every_stage_is_a_command():
    output = runner.invoke(app, ["--help"]).output
    for name in ("ingest", "validate", "anonymise", "split", "train", "evaluate", "promote", "monitor", "generate"):
        assert name in output


def test_stage_commands_come_from_the_stage_modules_and_dvc_yaml():
    """The stage list is stated once: every dvc.yaml stage and every stage module is a command, in dvc.yaml order."""
    from feedbackflow.stages._registry import stage_modules
    from feedbackflow.storage.dvc import pipeline

    commands = [command.name for command in app.registered_commands]
    stages = list(pipeline(ROOT / "dvc.yaml"))
    assert set(stages) <= set(stage_modules())
    assert [name for name in commands if name in stage_modules()] == [
        *stages,
        *(name for name in stage_modules() if name not in stages),
    ]


def test_stage_help_says_what_it_reads_writes_and_exits_with():
    output = " ".join(runner.invoke(app, ["validate", "--help"]).output.split())
    assert "data-quality rules" in output  # the module's docstring
    assert "Reads: data/raw, <validate.taxonomy>, <erasure.subjects_file>." in output
    assert "Writes: data/validated, data/quarantine, reports/validate/validate.json" in output
    assert "65: A batch broke a data-quality rule" in output and "77: Personal data survived" in output
    assert "Not a dvc.yaml stage" in runner.invoke(app, ["promote", "--help"]).output


def test_help_shows_no_rst_markup():
    for command in [[], *([name] for name in ("ingest", "train", "promote", "generate", "registry"))]:
        output = runner.invoke(app, [*command, "--help"]).output
        assert "``" not in output and ":mod:" not in output, command


def test_registry_show_of_a_missing_version_exits_66_not_the_outage_code(tmp_path, monkeypatch):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        f"[core]\n    remote = general\n['remote \"general\"']\n    url = {tmp_path / 'remote'}\n"
    )
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path))
    result = runner.invoke(app, ["registry", "show", "v9"])
    assert result.exit_code == 66, result.output
    assert "no version 'v9' in the registry (known: none)" in result.output


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
