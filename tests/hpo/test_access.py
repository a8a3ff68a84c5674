"""What hpo says when a tracking server with users refuses one, and URIs shown without the
credentials they hold (the real server's answers are in the namespace-host tests)."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException, get_error_code

from hpo.tracking import access


def answered(status: int, body: str = "Permission denied") -> MlflowException:
    return MlflowException(
        f"API request to endpoint /api/2.0/mlflow/runs/get failed with error code {status} "
        f"!= 200. Response body: '{body}'",
        error_code=get_error_code(status),  # as MLflow's REST client makes it
    )


@pytest.mark.parametrize(
    "uri, shown",
    [
        ("http://alice:s3cret@mlflow:5000", "http://mlflow:5000"),
        ("https://alice@mlflow:5000/path", "https://mlflow:5000/path"),
        ("http://mlflow:5000", "http://mlflow:5000"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ],
)
def test_a_uri_is_shown_without_its_credentials(uri, shown):
    assert access.without_credentials(uri) == shown


def test_401_and_403_are_refusals_and_other_answers_are_not():
    assert access.denied_status(answered(401)) == 401
    assert access.denied_status(answered(403)) == 403
    assert access.denied_status(answered(404, "not found")) is None
    host = answered(403, "Invalid Host header - possible DNS rebinding attack detected")
    assert access.denied_status(host) is None  # a name the server does not answer
    assert access.denied_status(ConnectionError("refused")) is None


def test_the_messages_name_the_user_and_what_was_refused(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    said = access.denied_message("http://bob:pw@mlflow:5000", 403, "experiment 'digits'")
    assert said.startswith("user 'bob' has no permission on experiment 'digits' at ")
    assert "http://mlflow:5000 (403)" in said and "pw" not in said
    said = access.denied_message("http://mlflow:5000", 401, "experiment 'digits'")
    assert "did not accept the credentials of user 'bob' (401)" in said
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    said = access.denied_message("http://mlflow:5000", 401, "experiment 'digits'")
    assert "requires a user (401): set MLFLOW_TRACKING_USERNAME" in said


def test_the_credentials_carried_to_workers_are_mlflows_variables_only(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-carried")
    assert access.credentials() == {
        "MLFLOW_TRACKING_USERNAME": "alice",
        "MLFLOW_TRACKING_PASSWORD": "pw",
    }
