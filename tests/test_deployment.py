"""docker-compose.yml, checked by a real Compose implementation (Debian's docker-compose
parses and validates it against the Compose schema; no Docker engine is needed for that)
and for the properties the deployment promises."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE = shutil.which("docker-compose")
SECRETS = ("POSTGRES_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY", "RAY_AUTH_TOKEN")
SECRETS += ("MLFLOW_ADMIN_PASSWORD", "MLFLOW_SECRET_KEY")
CLUSTER = ("mlflow", "ray-head", "ray-worker", "sweep")  # the services of hpo's own image

needs_compose = pytest.mark.skipif(
    COMPOSE is None,
    reason="validating docker-compose.yml needs Debian's docker-compose package",
)


def resolved(env_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [COMPOSE, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict:
    """The file as Compose resolves it with the example .env."""
    if COMPOSE is None:
        pytest.skip("validating docker-compose.yml needs Debian's docker-compose package")
    done = resolved(ENV_EXAMPLE)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


@needs_compose
def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = resolved(empty)
    assert done.returncode != 0
    assert re.search(r"set (POSTGRES_PASSWORD|S3_\w+|RAY_AUTH_TOKEN) in \.env", done.stderr)


def test_the_file_holds_no_secret_and_the_example_names_every_one():
    raw = COMPOSE_FILE.read_text()
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name in SECRETS:
        assert example[name].startswith("CHANGE"), name  # a placeholder, not a real secret
        assert example[name] not in raw
        # Every use of a secret is a reference that stops compose when it is unset.
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", raw)
        assert uses and all(u.startswith(":?") for u in uses), (name, uses)
    # A user's .env, with the real secrets, is never committed.
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_images_are_pinned_and_the_cluster_shares_hpos_image(config):
    services = config["services"]
    for name, service in services.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), (name, image)
    images = {services[name]["image"] for name in CLUSTER}
    builds = {services[name]["build"]["context"] for name in CLUSTER}
    assert images == {"hpo:0.1.0"} and builds == {str(ROOT)}


def test_stateful_services_have_healthchecks_and_dependents_wait_for_them(config):
    services = config["services"]
    for name in ("postgres", "artifacts", "mlflow", "ray-head"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    mlflow = services["mlflow"]["depends_on"]
    assert mlflow["postgres"]["condition"] == "service_healthy"
    assert mlflow["create-bucket"]["condition"] == "service_completed_successfully"
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"


def test_only_the_ui_and_the_dashboard_are_published_on_loopback(config):
    published = {
        name: [p["published"] if isinstance(p, dict) else p for p in service.get("ports", [])]
        for name, service in config["services"].items()
    }
    assert {name for name, ports in published.items() if ports} == {"mlflow", "ray-head"}
    for name in ("mlflow", "ray-head"):
        [port] = config["services"][name]["ports"]
        text = port if isinstance(port, str) else f"{port['host_ip']}:{port['published']}"
        assert text.startswith("127.0.0.1:"), (name, port)


def test_mlflow_proxies_artifacts_and_knows_the_hosts_it_is_reached_by(config):
    service = config["services"]["mlflow"]
    command = service["command"]
    assert command[:2] == ["mlflow", "server"] and "--serve-artifacts" in command
    assert command[command.index("--artifacts-destination") + 1].startswith("s3://")
    assert command[command.index("--backend-store-uri") + 1].startswith("postgresql")
    hosts = command[command.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow:5000", "127.0.0.1:5000", "localhost:5000"} <= set(hosts)
    # Users: MLflow's basic-auth app, its users on the same PostgreSQL, nobody's by default.
    assert command[command.index("--app-name") + 1] == "basic-auth"
    environment = service["environment"]
    assert environment["AUTH_DATABASE_URI"].startswith("postgresql+psycopg2://")
    assert environment["AUTH_DATABASE_URI"].endswith("@postgres:5432/mlflow")
    assert "default_permission = NO_PERMISSIONS" in " ".join(service["entrypoint"])
    assert environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"  # no sweep uses them
    assert (
        environment["MLFLOW_AUTH_ADMIN_PASSWORD"] and environment["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    )
    # Storage credentials live with the server only: no other service of hpo's has them.
    for name in CLUSTER:
        environment = config["services"][name].get("environment", {})
        has_keys = "AWS_SECRET_ACCESS_KEY" in environment
        assert has_keys == (name == "mlflow"), name


def test_the_ray_cluster_uses_token_authentication_and_room_for_its_object_store(config):
    services = config["services"]
    for name in ("ray-head", "ray-worker", "sweep"):
        environment = services[name]["environment"]
        assert environment["RAY_AUTH_MODE"] == "token" and environment["RAY_AUTH_TOKEN"]
        assert services[name]["shm_size"]  # /dev/shm holds Ray's object store
    assert "--head" in services["ray-head"]["command"]
    assert "--address=ray-head:6379" in services["ray-worker"]["command"]
    sweep = services["sweep"]
    assert sweep["profiles"] == ["sweep"]
    assert sweep["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "ray start --address=ray-head:6379 --num-cpus=0" in " ".join(sweep["entrypoint"])
