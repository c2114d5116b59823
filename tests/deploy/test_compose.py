"""docker-compose.yml, validated by `docker-compose config` (compose v1 needs no engine).

Debian's `docker-compose` package provides the command (.ci/run installs it). The checks read
the configuration as compose resolves it, converted to JSON by the Python that runs compose
(it has PyYAML, which compose itself needs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DIFFLAB_SERVICES = ("migrate", "dashboard", "worker", "worker-cpu")


def compose_command() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        reason = "docker-compose is not installed (apt-get install docker-compose; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def run_compose(*args: str, env_file: Path | None = ENV_EXAMPLE) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    argv = [compose_command(), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def resolved_config() -> dict[str, Any]:
    done = run_compose("config")
    assert done.returncode == 0, done.stderr
    interpreter = _compose_python()
    to_json = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    converted = subprocess.run(
        [interpreter, "-c", to_json],
        input=done.stdout,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(converted.stdout)


def _compose_python() -> str:
    first = Path(compose_command()).read_text(errors="replace").splitlines()[0]
    if first.startswith("#!") and "python" in first:
        return first[2:].strip().split()[0]
    pytest.skip("this docker-compose is not a Python script; cannot read its YAML as JSON")


def seconds(duration: str | int | float) -> float:
    """Compose durations ('3m', '1m30s', '90s', 90) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return resolved_config()


def test_compose_config_is_valid_and_has_every_service(config: dict[str, Any]) -> None:
    expected = {"redis", "postgres", "migrate", "dashboard", "worker", "worker-cpu"}
    assert expected <= set(config["services"])
    assert {"artifacts", "redis-data", "postgres-data"} <= set(config["volumes"])


def test_redis_is_append_only_and_password_protected(config: dict[str, Any]) -> None:
    redis = config["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--requirepass") + 1] == "change-me-redis"
    assert any(v.endswith(":/data") or ":/data:" in v for v in map(_volume, redis["volumes"]))


def test_gpu_worker_reserves_an_nvidia_gpu_and_has_time_to_checkpoint(
    config: dict[str, Any],
) -> None:
    worker = config["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "replicas" not in worker.get("deploy", {}), "a fixed replica count defeats --scale"
    assert "container_name" not in worker, "a container name defeats --scale"
    assert worker["command"] == ["difflab", "worker"]
    assert seconds(worker["stop_grace_period"]) >= 60


def test_cpu_worker_is_behind_a_profile() -> None:
    done = run_compose("config", "--profiles")
    assert done.returncode == 0, done.stderr
    assert "cpu" in done.stdout.split()


def test_cpu_worker_has_no_gpu_reservation(config: dict[str, Any]) -> None:
    cpu = config["services"]["worker-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert "devices" not in cpu.get("deploy", {}).get("resources", {}).get("reservations", {})
    assert seconds(cpu["stop_grace_period"]) >= 60


def test_every_long_running_service_has_a_healthcheck(config: dict[str, Any]) -> None:
    for name in ("redis", "postgres", "dashboard", "worker", "worker-cpu"):
        check = config["services"][name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    assert "/_stcore/health" in " ".join(config["services"]["dashboard"]["healthcheck"]["test"])
    for name in ("dashboard", "worker"):
        test = config["services"][name]["healthcheck"]["test"]
        if test[:3] == ["CMD", "python", "-c"]:
            compile(test[3], f"{name} healthcheck", "exec")


def test_start_order_waits_for_health_and_migration(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("dashboard", "worker", "worker-cpu"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["command"] == ["difflab", "db", "upgrade"]


def test_difflab_services_share_the_artifact_volume_and_the_stores(config: dict[str, Any]) -> None:
    for name in DIFFLAB_SERVICES:
        service = config["services"][name]
        assert any(v.startswith("artifacts:/data") for v in map(_volume, service["volumes"])), name
        env = service["environment"]
        assert env["DIFFLAB_DATABASE_URL"].startswith("postgresql+psycopg://difflab:"), name
        assert "@postgres:5432/" in env["DIFFLAB_DATABASE_URL"], name
        assert env["DIFFLAB_REDIS_URL"].endswith("@redis:6379/0"), name
        assert service.get("build") or service.get("image"), name


def test_secrets_come_from_the_environment_not_the_file(tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text()
    for secret in ("change-me", "POSTGRES_PASSWORD=", "REDIS_PASSWORD="):
        assert secret not in text
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = run_compose("config", env_file=empty)
    assert done.returncode != 0
    assert re.search(r"set (POSTGRES_PASSWORD|REDIS_PASSWORD) in", done.stderr)


def test_only_the_dashboard_gets_the_signing_key_and_compose_requires_it(
    config: dict[str, Any], tmp_path: Path
) -> None:
    services = config["services"]
    assert len(services["dashboard"]["environment"]["DIFFLAB_SECRET_KEY"]) >= 32
    for name in ("migrate", "worker", "worker-cpu"):
        assert "DIFFLAB_SECRET_KEY" not in services[name]["environment"], name
    assert services["dashboard"]["command"][:3] == ["streamlit", "run", "dashboard/server.py"]
    without = tmp_path / "no-key.env"
    without.write_text(
        "\n".join(
            line
            for line in ENV_EXAMPLE.read_text().splitlines()
            if not line.startswith("DIFFLAB_SECRET_KEY=")
        )
    )
    done = run_compose("config", env_file=without)
    assert done.returncode != 0
    assert "set DIFFLAB_SECRET_KEY in .env" in done.stderr


def test_env_example_names_every_required_variable() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text()))
    example = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    }
    assert required and required <= example


def _volume(entry: str | dict[str, Any]) -> str:
    if isinstance(entry, str):
        return entry
    return f"{entry.get('source', '')}:{entry.get('target', '')}"
