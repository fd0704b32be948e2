"""The container stack: docker/docker-compose.yaml against the Compose Specification, plus what users rely on.

Offline: the Compose schema is vendored in tests/unit/schemas (see its README for origin and license), and no
Docker engine is needed. Compose's own variable interpolation is reproduced for ``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?error}`` and ``$$`` so the file is also checked with docker/.env.example's values.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"
CONSTRAINTS = "requirements/constraints-3.11.txt"
DOCKERFILES = {"cpu": DOCKER / "Dockerfile", "trainer": DOCKER / "Dockerfile.trainer"}

AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-worker-gpu",
}
LONG_RUNNING = AIRFLOW_SERVICES - {"airflow-init"} | {"postgres", "redis", "minio"}
ONE_SHOT = {"airflow-init", "createbuckets"}

_VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


# ------------------------------------------------------------------------------------------------ helpers
def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose-style interpolation of every string in ``value`` (raises KeyError for an unset ``${VAR:?err}``)."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        escaped, name, operator, argument, bare = match.groups()
        if escaped:
            return "$"
        name = name or bare
        current = env.get(name)
        if operator in (":-", "-"):
            unset = current is None or (operator == ":-" and current == "")
            return argument if unset else current
        if operator in (":?", "?"):
            if current is None or (operator == ":?" and current == ""):
                raise KeyError(f"{name}: {argument}")
            return current
        return current or ""

    return _VARIABLE.sub(substitute, value)


def variables(value: Any) -> list[tuple[str, str | None]]:
    """Every (name, operator) referenced in ``value``'s strings."""
    found: list[tuple[str, str | None]] = []
    if isinstance(value, dict):
        for item in value.values():
            found += variables(item)
    elif isinstance(value, list):
        for item in value:
            found += variables(item)
    elif isinstance(value, str):
        for escaped, name, operator, _argument, bare in _VARIABLE.findall(value):
            if not escaped:
                found.append((name or bare, operator or None))
    return found


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        env[key.strip()] = value.strip()
    return env


def command_args(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def option_value(args: list[str], option: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments and blank lines dropped, backslash continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = pending + stripped
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, f"{path.name}: dangling line continuation"
    return instructions


def stages(instructions: list[tuple[str, str]]) -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """Global ARG defaults and the instructions of each build stage (each starting with its FROM)."""
    global_args: dict[str, str] = {}
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions:
        if keyword == "FROM":
            result.append([(keyword, rest)])
        elif not result:
            assert keyword == "ARG", f"only ARG may precede the first FROM, found {keyword}"
            name, _, default = rest.partition("=")
            global_args[name] = default.strip('"')
        else:
            result[-1].append((keyword, rest))
    return global_args, result


def base_image(from_args: str, global_args: dict[str, str]) -> str:
    image = next(part for part in from_args.split() if not part.startswith("--"))
    return interpolate(image, global_args)


def stage_args(stage: list[tuple[str, str]]) -> dict[str, str]:
    found = {}
    for keyword, rest in stage:
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            found[name] = default.strip('"')
    return found


def stage_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for token in shlex.split(rest):
                key, sep, value = token.partition("=")
                if sep:
                    env[key] = value
    return env


def constraint_pin(package: str) -> str:
    for line in (ROOT / CONSTRAINTS).read_text(encoding="utf-8").splitlines():
        name, sep, version = line.partition("==")
        if sep and name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in {CONSTRAINTS}")


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    """The compose file as ``docker compose --env-file docker/.env.example config`` would read it."""
    return interpolate(copy.deepcopy(raw_compose), env_example)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def dockerfiles() -> dict[str, list[tuple[str, str]]]:
    return {name: dockerfile_instructions(path) for name, path in DOCKERFILES.items()}


# ------------------------------------------------------------------------------------------------ schema
def test_schema_is_the_vendored_compose_spec(validator: jsonschema.protocols.Validator) -> None:
    assert validator.schema["title"] == "Compose Specification"
    assert (SCHEMA_FILE.parent / "README.md").is_file()
    assert (SCHEMA_FILE.parent / "LICENSE.compose-spec").is_file()


def test_compose_file_is_valid_against_the_compose_spec(
    validator: jsonschema.protocols.Validator, raw_compose: dict[str, Any], compose: dict[str, Any]
) -> None:
    for document in (raw_compose, compose):
        errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
        assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_schema_catches_mistakes(validator: jsonschema.protocols.Validator, compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["airflow-worker"]["healthcheck"]["intervall"] = "30s"
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(compose)
    broken["services"]["airflow-worker-gpu"]["deploy"]["resources"]["reservations"]["devices"] = "all"
    assert not validator.is_valid(broken)


def test_every_required_variable_is_in_env_example(raw_compose: dict[str, Any], env_example: dict[str, str]) -> None:
    required = {name for name, operator in variables(raw_compose) if operator in (None, ":?", "?")}
    assert required, "the secrets are expected to be required (${VAR:?...}), not defaulted in the compose file"
    assert required <= set(env_example), f"missing from docker/.env.example: {sorted(required - set(env_example))}"
    interpolate(raw_compose, env_example)  # raises if any ${VAR:?} stays unset


def test_secrets_have_no_defaults_in_the_compose_file(raw_compose: dict[str, Any]) -> None:
    referenced = dict(variables(raw_compose))
    for secret in (
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "POSTGRES_PASSWORD",
        "MINIO_ROOT_PASSWORD",
        "FEEDBACKFLOW_S3_SECRET_KEY",
        "AIRFLOW_ADMIN_PASSWORD",
    ):
        assert referenced.get(secret) == ":?", f"{secret} must be required (${{{secret}:?...}}), not defaulted"


# ------------------------------------------------------------------------------------------------ services
def test_stack_services(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    assert services >= AIRFLOW_SERVICES | {"postgres", "redis", "minio", "createbuckets"}
    assert not any("webserver" in name for name in services)


def test_every_airflow_service_uses_the_shared_env(raw_compose: dict[str, Any], compose: dict[str, Any]) -> None:
    shared = compose["x-airflow-env"]
    assert raw_compose["x-airflow-common"]["environment"] == raw_compose["x-airflow-env"]
    for name in AIRFLOW_SERVICES:
        environment = compose["services"][name]["environment"]
        assert isinstance(environment, dict), name
        different = {key for key, value in shared.items() if environment.get(key) != value}
        assert not different, f"{name} does not use the shared Airflow environment for {sorted(different)}"


def test_shared_env_configures_airflow_3_with_celery(compose: dict[str, Any]) -> None:
    env = compose["x-airflow-env"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] and env["AIRFLOW__API__SECRET_KEY"]
    assert env["FEEDBACKFLOW_PROJECT_DIR"] == "/opt/feedbackflow"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/feedbackflow/dags"
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/feedbackflow/plugins"
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]


def test_airflow_services_share_the_project_and_run_unprivileged(compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert any(str(volume).endswith(":/opt/feedbackflow") for volume in service["volumes"]), name
        assert not str(service["user"]).startswith(("0:", "root")), name


def test_airflow_3_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert command_args(services["airflow-apiserver"])[:2] == ["airflow", "api-server"]
    assert command_args(services["airflow-scheduler"]) == ["airflow", "scheduler"]
    assert command_args(services["airflow-dag-processor"]) == ["airflow", "dag-processor"]
    assert command_args(services["airflow-triggerer"]) == ["airflow", "triggerer"]
    init = " ".join(command_args(services["airflow-init"]))
    assert "airflow db migrate" in init
    assert "airflow users create --role Admin" in init
    for name in AIRFLOW_SERVICES:
        assert "webserver" not in " ".join(command_args(services[name])), name


def test_cpu_worker_takes_the_default_queue(compose: dict[str, Any]) -> None:
    args = command_args(compose["services"]["airflow-worker"])
    assert args[:3] == ["airflow", "celery", "worker"]
    assert option_value(args, "--queues") == "default"


def test_gpu_worker_listens_on_queue_gpu_and_reserves_a_gpu(compose: dict[str, Any]) -> None:
    worker = compose["services"]["airflow-worker-gpu"]
    args = command_args(worker)
    assert args[:3] == ["airflow", "celery", "worker"]
    assert option_value(args, "--queues") == "gpu"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    gpu = [device for device in devices if "gpu" in device.get("capabilities", [])]
    assert gpu, "the GPU worker must reserve a device with the 'gpu' capability"
    assert gpu[0].get("driver") == "nvidia"
    assert gpu[0].get("count") == "all" or int(gpu[0].get("count", 1)) >= 1 or gpu[0].get("device_ids")
    assert worker["build"]["dockerfile"] == "docker/Dockerfile.trainer"


def test_images_build_from_the_project_dockerfiles(compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        build = compose["services"][name]["build"]
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        assert context == ROOT, f"{name}: build context should be the repository root"
        assert build["dockerfile"] in {"docker/Dockerfile", "docker/Dockerfile.trainer"}, name
        assert (context / build["dockerfile"]).is_file(), name
    assert compose["services"]["airflow-apiserver"]["build"]["dockerfile"] == "docker/Dockerfile"


def test_healthchecks_and_startup_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in LONG_RUNNING:
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition["condition"] == expected, f"{name} -> {dependency}"
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert "airflow-init" in services[name]["depends_on"] or "airflow-apiserver" in services[name]["depends_on"]
    assert services["airflow-apiserver"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_minio_buckets_are_created(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    job = compose["services"]["createbuckets"]
    assert job["image"].startswith("minio/mc")
    script = " ".join(command_args(job))
    assert "mc mb" in script
    assert job["environment"]["DVC_BUCKET"] == env_example["FEEDBACKFLOW_DVC_BUCKET"] == "feedbackflow-dvc"
    assert (
        job["environment"]["RESTRICTED_BUCKET"]
        == env_example["FEEDBACKFLOW_RESTRICTED_BUCKET"]
        == "feedbackflow-restricted"
    )
    assert "${DVC_BUCKET}" in script and "${RESTRICTED_BUCKET}" in script


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name}: volume {source} is not declared"


# ------------------------------------------------------------------------------------------------ Dockerfiles
@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_structure(name: str, dockerfiles: dict[str, list[tuple[str, str]]]) -> None:
    instructions = dockerfiles[name]
    _global_args, build_stages = stages(instructions)
    assert build_stages, "no FROM"
    final = build_stages[-1]
    keywords = [keyword for keyword, _ in final]
    assert "USER" in keywords
    user = interpolate([rest for keyword, rest in final if keyword == "USER"][-1], stage_args(final))
    uid = user.split(":")[0]
    assert uid.isdigit() and uid != "0", f"the image must run as a numeric non-root user, not {user!r}"
    env = stage_env(final)
    assert env["AIRFLOW_HOME"]
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/feedbackflow/dags"
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/feedbackflow/plugins"
    assert env["FEEDBACKFLOW_PROJECT_DIR"] == "/opt/feedbackflow"
    known = {"ARG", "FROM", "RUN", "COPY", "ENV", "WORKDIR", "USER", "EXPOSE", "ENTRYPOINT", "CMD", "LABEL"}
    assert {keyword for keyword, _ in instructions} <= known | {"HEALTHCHECK", "SHELL", "VOLUME", "STOPSIGNAL"}
    for _keyword, rest in (item for item in instructions if item[0] == "COPY"):
        if "--from=" in rest:
            continue
        *sources, _destination = [part for part in shlex.split(rest) if not part.startswith("--")]
        for source in sources:
            assert source == "." or (ROOT / source).exists(), f"{name}: COPY source {source} is missing"
    assert (DOCKERFILES[name].parent / f"{DOCKERFILES[name].name}.dockerignore").is_file()


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_installs_the_project_with_the_constraints(
    name: str, dockerfiles: dict[str, list[tuple[str, str]]]
) -> None:
    global_args, build_stages = stages(dockerfiles[name])
    installs = [
        (stage, rest) for stage in build_stages for keyword, rest in stage if keyword == "RUN" and "pip install" in rest
    ]
    assert installs, f"{name}: no pip install"
    stage, run = installs[0]
    args = shlex.split(run.split("pip install", 1)[1].split("&&", 1)[0])
    assert option_value(args, "-c") == CONSTRAINTS or option_value(args, "--constraint") == CONSTRAINTS
    assert "." in args, "the project itself (.) must be installed"
    assert any(f"COPY {CONSTRAINTS}" in f"{keyword} {rest}" for keyword, rest in stage)
    assert (ROOT / CONSTRAINTS).is_file()
    defaults = {**global_args, **stage_args(stage)}
    torch = interpolate(defaults["TORCH_REQUIREMENT"], defaults)
    assert torch.split("==")[1].split("+")[0] == constraint_pin("torch")
    assert "apache-airflow-providers-celery" in interpolate(defaults["AIRFLOW_DEPLOYMENT_REQUIREMENTS"], defaults)


def test_cpu_image_is_python_311_slim_with_cpu_torch(dockerfiles: dict[str, list[tuple[str, str]]]) -> None:
    global_args, build_stages = stages(dockerfiles["cpu"])
    assert all(base_image(stage[0][1], global_args).startswith("python:3.11-slim") for stage in build_stages)
    run = " ".join(rest for stage in build_stages for keyword, rest in stage if keyword == "RUN")
    defaults = {**global_args, **stage_args(build_stages[0])}
    assert interpolate(defaults["TORCH_INDEX_URL"], defaults) == "https://download.pytorch.org/whl/cpu"
    assert '--extra-index-url "${TORCH_INDEX_URL}"' in run
    assert defaults["TORCH_REQUIREMENT"].endswith("+cpu")


def test_trainer_image_is_cuda_with_python_311(dockerfiles: dict[str, list[tuple[str, str]]]) -> None:
    global_args, build_stages = stages(dockerfiles["trainer"])
    final_base = base_image(build_stages[-1][0][1], global_args)
    assert final_base.startswith("nvidia/cuda:") and "cudnn" in final_base
    builder = build_stages[1]
    assert stage_args(builder)["PYTHON_VERSION"] == "3.11"
    assert "+cpu" not in stage_args(builder)["TORCH_REQUIREMENT"]
    assert "download.pytorch.org/whl/cpu" not in DOCKERFILES["trainer"].read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerignore_keeps_local_state_and_restricted_data_out(name: str) -> None:
    ignored = (DOCKERFILES[name].parent / f"{DOCKERFILES[name].name}.dockerignore").read_text(encoding="utf-8")
    patterns = {line.strip() for line in ignored.splitlines() if line.strip() and not line.startswith("#")}
    assert {"**/.git", "**/.venv", "**/.env", "data/*", "storage", "reports", "models"} <= patterns


def test_airflow_init_creates_the_gpu_pool(compose: dict[str, Any]) -> None:
    """Without the pool the scheduler would leave the train task queued forever."""
    command = compose["services"]["airflow-init"]["command"]
    script = command if isinstance(command, str) else "\n".join(command)
    assert "feedbackflow pools" in script
    assert script.index("airflow db migrate") < script.index("feedbackflow pools")


def test_airflow_init_points_both_dvc_remotes_at_minio(compose: dict[str, Any]) -> None:
    """Both remotes on MinIO, each in its own bucket: no stage data on the host's bind mount, restricted kept apart."""
    command = compose["services"]["airflow-init"]["command"]
    script = command if isinstance(command, str) else "\n".join(command)
    assert "feedbackflow remotes" in script
    for flag, variable in (
        ("--general", "${FEEDBACKFLOW_DVC_BUCKET}"),
        ("--restricted", "${FEEDBACKFLOW_RESTRICTED_BUCKET}"),
        ("--endpoint-url", "${AWS_ENDPOINT_URL}"),
    ):
        assert flag in script and variable in script
    env = compose["services"]["airflow-init"]["environment"]
    assert env["FEEDBACKFLOW_DVC_BUCKET"] != env["FEEDBACKFLOW_RESTRICTED_BUCKET"]
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"


def test_compose_and_the_local_celery_cluster_stay_in_step(compose: dict[str, Any], tmp_path: Path) -> None:
    """`make airflow-celery` (and the Celery integration test) run the compose stack's components, queues and
    Airflow settings as local processes: the same roles, the same queue per worker, the same environment names."""
    from tools.cluster import CONTROL, WORKERS, CeleryCluster

    services = compose["services"]
    commands = {" ".join(command_args(services[name])[:2]) for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert {f"airflow {component}" for component in CONTROL} | {"airflow celery"} == commands
    queues = {
        option_value(command_args(services[name]), "--queues") for name in ("airflow-worker", "airflow-worker-gpu")
    }
    assert queues == {queue for queue, _ in WORKERS.values()}
    assert option_value(command_args(services["airflow-worker-gpu"]), "--concurrency") == str(WORKERS["worker-gpu"][1])
    cluster = CeleryCluster(tmp_path, {"control": tmp_path}, "postgresql+psycopg://u@h:5432/d", "redis://h:6379/1")
    local = {key for key in cluster.env("control") if key.startswith("AIRFLOW__")}
    shared = {key for key in compose["x-airflow-env"] if key.startswith("AIRFLOW__")}
    same = {
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK",
    }
    assert same <= local and same <= shared
    assert cluster.env("control")["AIRFLOW__CORE__EXECUTOR"] == compose["x-airflow-env"]["AIRFLOW__CORE__EXECUTOR"]


# ------------------------------------------------------------------------------------------------ lineage
def test_marquez_receives_the_airflow_tasks_lineage(compose: dict[str, Any], raw_compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"marquez", "marquez-db", "marquez-web"} <= set(services)
    env = compose["x-airflow-env"]
    assert env["OPENLINEAGE_URL"] == "http://marquez:5000"  # the marquez service's API port, inside the network
    assert env["AIRFLOW__OPENLINEAGE__EXTRACTORS"] == "feedbackflow.orchestration.lineage.DvcStageExtractor"
    marquez = services["marquez"]
    assert marquez["environment"]["POSTGRES_HOST"] == "marquez-db"
    assert marquez["environment"]["MARQUEZ_PORT"] == "5000" and "5001" in str(marquez["healthcheck"]["test"])
    assert marquez["depends_on"]["marquez-db"]["condition"] == "service_healthy"
    assert services["marquez-web"]["environment"]["MARQUEZ_HOST"] == "marquez"
    assert dict(variables(raw_compose)).get("MARQUEZ_DB_PASSWORD") == ":?", "the Marquez database password is a secret"
    for name in ("marquez", "marquez-db", "marquez-web"):
        assert services[name]["healthcheck"]["test"], name
