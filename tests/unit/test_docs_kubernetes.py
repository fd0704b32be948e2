"""docs/deploy-kubernetes.md: its YAML parses, and its queues and settings are the project's own."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from feedbackflow.settings import load_settings
from tools.cluster import WORKERS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy-kubernetes.md"


def _blocks() -> list[dict]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)]


def test_the_yaml_blocks_parse_and_route_the_queues_as_the_dag_does():
    values, gpu_worker = _blocks()
    settings = load_settings(ROOT / "params.yaml")
    assert values["executor"] == "CeleryExecutor"
    assert values["workers"]["command"][-1] == WORKERS["worker-default"][0]
    container = gpu_worker["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[command.index("--queues") + 1] == settings.dag.train_queue == WORKERS["worker-gpu"][0]
    assert command[command.index("--concurrency") + 1] == str(WORKERS["worker-gpu"][1])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == settings.train.num_gpus
    assert gpu_worker["spec"]["template"]["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_no_secret_values_in_the_values_file():
    values, _ = _blocks()
    assert all("secretName" in item for item in values["secret"])
    text = yaml.safe_dump(values).lower()
    assert "password" not in text and "aws_secret_access_key" not in text
