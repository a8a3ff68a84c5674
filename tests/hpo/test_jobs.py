"""What `hpo.execution.jobs.submit` hands Ray Job Submission (a fake client records it; the
real submissions run in tests/integration)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from hpo.execution import jobs


class FakeJobs:
    def __init__(self) -> None:
        self.submitted: list[dict] = []
        self.shipped: dict[str, str] = {}  # the packages' files, read as Ray uploads them

    def submit_job(self, **kwargs) -> None:
        self.submitted.append(kwargs)
        for package in kwargs["runtime_env"].get("py_modules", []):
            for path in Path(package).iterdir():
                self.shipped[path.name] = path.read_text()


@pytest.fixture
def fake(monkeypatch):
    fake = FakeJobs()
    monkeypatch.setattr(jobs, "client", lambda address: fake)
    return fake


@pytest.fixture
def experiment(tmp_path):
    (tmp_path / "exp.py").write_text("space = {}\n")
    return tmp_path / "exp.py"


def test_the_driver_records_into_the_tracking_uri_the_cluster_reaches(fake, experiment):
    job = jobs.submit(
        "http://head:8265",
        experiment,
        ["--trials", "4"],
        tracking_uri="http://127.0.0.1:5000",
        cluster_tracking_uri="http://mlflow:5000",
    )
    [sent] = fake.submitted
    assert sent["submission_id"] == job and job.startswith("hpo-")
    words = shlex.split(sent["entrypoint"])
    # exec: the shell Ray runs it with leaves the driver alone, to be signalled by `stop`.
    assert words[:3] == ["exec", "hpo", "run"] and words[3] == "exp.py"
    assert words[words.index("--tracking-uri") + 1] == "http://mlflow:5000"
    assert sent["runtime_env"]["working_dir"] == str(experiment.parent)
    assert sent["runtime_env"]["env_vars"][jobs.JOB_ID_VARIABLE] == job
    assert sent["metadata"]["tracking_uri"] == "http://127.0.0.1:5000"
    assert sent["metadata"]["cluster_tracking_uri"] == "http://mlflow:5000"


def test_without_a_cluster_uri_the_driver_uses_this_machines(fake, experiment):
    jobs.submit("http://head:8265", experiment, [], tracking_uri="http://mlflow:5000")
    words = shlex.split(fake.submitted[0]["entrypoint"])
    assert words[words.index("--tracking-uri") + 1] == "http://mlflow:5000"


@pytest.mark.parametrize(
    "local, remote", [("sqlite:///mlflow.db", None), ("http://mlflow:5000", "mlruns")]
)
def test_a_store_the_cluster_cannot_reach_is_refused_before_submitting(
    fake, experiment, local, remote
):
    refused = remote or local
    with pytest.raises(ValueError, match=f"cannot reach the tracking store '{refused}'"):
        jobs.submit(
            "http://head:8265",
            experiment,
            [],
            tracking_uri=local,
            cluster_tracking_uri=remote,
        )
    assert fake.submitted == []


def test_the_users_credentials_travel_in_a_package_not_in_what_ray_shows(
    fake, experiment, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alice-secret-1")
    jobs.submit(
        "http://head:8265",
        experiment,
        [],
        tracking_uri="http://127.0.0.1:5000",
        cluster_tracking_uri="http://alice:uri-secret-2@mlflow:5000",
    )
    [sent] = fake.submitted
    shown = json.dumps({k: v for k, v in sent.items() if k != "runtime_env"})
    shown += json.dumps(sent["runtime_env"]["env_vars"])
    assert "secret" not in shown and "alice" not in shown
    assert "--tracking-uri http://mlflow:5000" in sent["entrypoint"]
    # The URI's own credentials win over the variables', as MLflow's client does.
    login = json.loads(fake.shipped["credentials.json"])
    assert login == {
        "MLFLOW_TRACKING_USERNAME": "alice",
        "MLFLOW_TRACKING_PASSWORD": "uri-secret-2",
    }


def test_a_submitted_driver_adopts_the_shipped_credentials(tmp_path, monkeypatch):
    package = Path(
        jobs._credentials_package(
            tmp_path,
            {
                "MLFLOW_TRACKING_USERNAME": "bob",
                "MLFLOW_TRACKING_PASSWORD": "pw",
                "PATH": "/nowhere",
            },
        )
    )
    assert package.joinpath("credentials.json").stat().st_mode & 0o777 == 0o600
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    path = os.environ["PATH"]
    jobs.adopt_credentials()
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "bob"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "pw"
    assert os.environ["PATH"] == path  # only MLflow's credential variables are taken
