from feedbackflow.config import ProjectPaths
from feedbackflow.io import write_json
from feedbackflow.settings import EvaluateSettings
from feedbackflow.stages.evaluate import decide
from feedbackflow.stages.promote import should_promote
from feedbackflow.storage.registry import Registry

RULES = EvaluateSettings(min_accuracy=0.6, min_macro_f1=0.5, min_improvement=0.01)


def test_first_challenger_only_needs_the_minimums():
    decision = decide({"accuracy": 0.7, "macro_f1": 0.6}, None, RULES)
    assert decision.promote
    assert any("no champion yet" in reason for reason in decision.reasons)


def test_challenger_below_minimum_is_refused_with_the_reason():
    decision = decide({"accuracy": 0.55, "macro_f1": 0.6}, None, RULES)
    assert not decision.promote
    assert "challenger accuracy 0.5500 < minimum 0.6000" in decision.reasons


def test_challenger_must_beat_champion_by_the_margin():
    champion = {"accuracy": 0.8, "macro_f1": 0.70}
    assert not decide({"accuracy": 0.81, "macro_f1": 0.705}, champion, RULES).promote
    assert decide({"accuracy": 0.81, "macro_f1": 0.72}, champion, RULES).promote


def test_promotion_records_versions_and_refuses_the_same_model_twice(tmp_path):
    paths = ProjectPaths(tmp_path)
    paths.challenger.mkdir(parents=True)
    (paths.challenger / "model.safetensors").write_bytes(b"weights")
    gate = {"promote": True, "reasons": ["ok"], "challenger": {"model_sha256": "abc", "accuracy": 0.9, "macro_f1": 0.8}}
    write_json(paths.stage_reports("evaluate") / "gate.json", gate)
    assert should_promote(paths) == (True, "gate passed: ok")
    record = Registry(paths).promote(gate, "run-1")
    assert record["version"] == "v1" and record["previous_version"] is None
    assert (paths.champion / "model.safetensors").read_bytes() == b"weights"
    allowed, reason = should_promote(paths)
    assert not allowed and "already the champion (v1)" in reason
    gate["challenger"]["model_sha256"] = "def"
    write_json(paths.stage_reports("evaluate") / "gate.json", gate)
    second = Registry(paths).promote(gate, "run-2")
    assert second["version"] == "v2" and second["previous_version"] == "v1"
    assert [entry["version"] for entry in Registry(paths).history()] == ["v1", "v2"]
