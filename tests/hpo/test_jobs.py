"""What `hpo.execution.jobs.submit` hands Ray Job Submission (a fake client records it; the
real submissions run in tests/integration)."""

from __future__ import annotations

import json
import os
import shlex

import pytest

from hpo.execution import jobs


class FakeJobs:
    def __init__(self) -> None:
        self.submitted: list[dict] = []

    def submit_job(self, **kwargs) -> None:
        self.submitted.append(kwargs)


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


def test_the_users_credentials_travel_sealed_with_the_clusters_token(fake, experiment, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "the-cluster-token")
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
    shown = json.dumps(sent)  # all Ray keeps and shows of the job
    assert "secret" not in shown and "alice" not in shown
    assert "--tracking-uri http://mlflow:5000" in sent["entrypoint"]
    # The driver, with the cluster's token, opens them; the URI's own win, as in MLflow.
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    path = os.environ["PATH"]
    monkeypatch.setenv(
        jobs.CREDENTIALS_VARIABLE, sent["runtime_env"]["env_vars"][jobs.CREDENTIALS_VARIABLE]
    )
    jobs.adopt_credentials()
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "uri-secret-2"
    assert jobs.CREDENTIALS_VARIABLE not in os.environ and os.environ["PATH"] == path


def test_credentials_are_not_sent_to_a_cluster_without_a_token(fake, experiment, monkeypatch):
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(jobs, "cluster_token", lambda: None)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alice-secret-1")
    with pytest.raises(jobs.SubmissionError, match="sealed with its token"):
        jobs.submit("http://head:8265", experiment, [], tracking_uri="http://mlflow:5000")
    assert fake.submitted == []


NOBODY = "no Ray dashboard answered at http://127.0.0.1:40107"
REFUSED = "the Ray cluster at http://127.0.0.1:40107 refused this machine's token"


@pytest.mark.parametrize(
    "exc, says",
    [
        # A port whose digits hold "401" that nothing answers: not a refused token.
        (ConnectionError("Failed to connect to Ray at address: http://127.0.0.1:40107."), NOBODY),
        (RuntimeError("Request failed with status code 40312: no."), NOBODY),
        (RuntimeError("Request failed with status code 403: Forbidden."), REFUSED),
        (RuntimeError("Authentication required: ..."), REFUSED),
    ],
)
def test_a_refused_token_is_told_apart_from_an_address_that_does_not_answer(exc, says):
    assert jobs._explain("http://127.0.0.1:40107", exc).startswith(says)


def test_rays_authentication_error_is_a_refused_token():
    from ray.exceptions import AuthenticationError

    said = jobs._explain("http://head:8265", AuthenticationError("Authentication failed: x"))
    assert said.startswith("the Ray cluster at http://head:8265 refused this machine's token")
