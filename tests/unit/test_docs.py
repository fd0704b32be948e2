"""The README stays a front page, the docs site builds strictly, and feedbackflow.env gives any shell the project."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ENV_FILE = ROOT / "feedbackflow.env"


def test_the_docs_site_builds_with_strict_checks(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "index.html").is_file()
    assert (site / "benchmarks" / "index.html").is_file()
    assert (site / "images" / "evidently_dashboard.png").is_file()


def test_the_readme_is_a_front_page_with_the_quickstart() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move the detail to a page under docs/"
    text = "\n".join(lines)
    for command in ("make demo", "make test", "make shell", "source feedbackflow.env"):
        assert command in text
    assert "dvc.yaml" in text and "params.yaml" in text


def _slug(heading: str) -> str:
    heading = re.sub(r"[`*]", "", heading).strip().lower()
    return re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", heading))


def test_the_readme_links_point_at_files_and_headings_that_exist() -> None:
    text = README.read_text(encoding="utf-8")
    slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    for target in targets:
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if not path:
            assert anchor in slugs, f"README links to #{anchor}, which is no heading of it"
        else:
            assert (ROOT / path).exists(), f"README links to {path}, which does not exist"


def _source_env(cwd: Path, script: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    relative = os.path.join(".", os.path.relpath(ENV_FILE, cwd))
    done = subprocess.run(
        ["bash", "-c", f"source {relative} && {script}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def test_the_env_file_points_airflow_and_the_cli_at_the_project_from_a_subfolder() -> None:
    names = [
        "FEEDBACKFLOW_PROJECT_DIR",
        "AIRFLOW_HOME",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__PLUGINS_FOLDER",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
    ]
    script = " && ".join(f'echo "{name}=${name}"' for name in names) + ' && echo "PATH=$PATH"'
    for cwd in (ROOT / "tests" / "unit", ROOT / "src" / "feedbackflow"):
        values = dict(line.split("=", 1) for line in _source_env(cwd, script).splitlines())
        assert values["FEEDBACKFLOW_PROJECT_DIR"] == str(ROOT)
        assert values["AIRFLOW_HOME"] == str(ROOT / "airflow_home")
        assert values["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
        assert values["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(ROOT / "plugins")
        assert values["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert values["HF_HUB_OFFLINE"] == values["TRANSFORMERS_OFFLINE"] == "1"
        assert values["PATH"] == f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin"


def test_sourcing_the_env_file_twice_puts_the_venv_on_the_path_once() -> None:
    path = _source_env(ROOT, 'source ./feedbackflow.env && echo "$PATH"').strip()
    assert path == f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_recipes_run_with_the_env_file_values() -> None:
    exported = re.findall(r"^export ([A-Za-z_][A-Za-z0-9_]*)=", ENV_FILE.read_text(), flags=re.M)
    assert "AIRFLOW__CORE__DAGS_FOLDER" in exported and "FEEDBACKFLOW_PROJECT_DIR" in exported
    from_bash = dict(
        line.split("=", 1) for line in _source_env(ROOT, " && ".join(f'echo "{n}=${n}"' for n in exported)).splitlines()
    )
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", "Makefile", "-f", "-", "print-env"],
        input="print-env:\n\t@env\n",
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    from_make = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    for name in exported:
        assert from_make.get(name) == from_bash[name], name
