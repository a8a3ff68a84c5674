"""A tracking server with users (MLflow's basic-auth app, `mlflow server --app-name
basic-auth`): who hpo talks to it as, what its refusals mean, and how a tracking URI is
shown and recorded without the credentials it may hold.

MLflow's clients authenticate from ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD`` (or a token, or credentials in the URI itself). A 401 means
those were not accepted, a 403 that the user has no permission on what was asked for: both
are final answers, never an outage to wait out.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from hpo.tracking.outage import TrackingRefused, refused_host

# The variables MLflow's REST client authenticates with: a trial worker that writes its
# own artifacts needs them, and they must never be recorded anywhere.
CREDENTIAL_VARIABLES = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
)


class TrackingDenied(TrackingRefused):
    """The tracking server did not accept the user's credentials (401) or refused them the
    experiment (403)."""


def denied_status(exc: BaseException) -> int | None:
    """401 or 403 when ``exc`` is the tracking server refusing the user, else None."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        status = exc.get_http_status_code()
    elif isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code  # an artifact upload or download
    else:
        return None
    if status not in (401, 403) or refused_host(exc):  # a Host header is not a user
        return None
    return status


def without_credentials(uri: str) -> str:
    """``uri`` as it may be shown and recorded: ``http://user:pass@host`` loses its
    ``user:pass@``."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def user_of(uri: str) -> str | None:
    """The user hpo authenticates as at ``uri``: the URI's own, else MLflow's variable."""
    netloc = urlsplit(uri).netloc
    if "@" in netloc:
        return netloc.rsplit("@", 1)[0].split(":", 1)[0] or None
    return os.environ.get("MLFLOW_TRACKING_USERNAME") or None


def denied_message(uri: str, status: int, what: str) -> str:
    """One line for a refusal of ``what`` (e.g. "experiment 'digits'") at ``uri``."""
    server, user = without_credentials(uri), user_of(uri)
    if status == 401:
        if user is None and not os.environ.get("MLFLOW_TRACKING_TOKEN"):
            return (
                f"the tracking server at {server} requires a user (401): set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to your account on it"
            )
        who = f"user {user!r}" if user else "the token in MLFLOW_TRACKING_TOKEN"
        return (
            f"the tracking server at {server} did not accept the credentials of {who} (401): "
            "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    who = f"user {user!r}" if user else "this user"
    return (
        f"{who} has no permission on {what} at {server} (403): its owner or an admin can "
        "grant READ (hpo show, loading its models) or EDIT (hpo resume, hpo run into it)"
    )


def refusal(exc: BaseException, uri: str, what: str) -> TrackingDenied | None:
    """``exc`` as a `TrackingDenied` when it is the server at ``uri`` refusing the user
    ``what`` (e.g. "experiment 'digits'"); None when it is anything else."""
    status = denied_status(exc)
    return None if status is None else TrackingDenied(denied_message(uri, status, what))


def credentials() -> dict[str, str]:
    """This process's MLflow credentials, for a trial worker to write with (carried as an
    argument of the worker's start, so they appear in no environment Ray shows)."""
    return {name: os.environ[name] for name in CREDENTIAL_VARIABLES if os.environ.get(name)}


def check_access(tracking_uri: str, experiment_name: str) -> None:
    """Raise `TrackingDenied` now, before a cluster is joined or workers start, when the
    tracking server refuses this user the experiment (a local store has no users)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from hpo.tracking.store import is_server

    if not is_server(tracking_uri):
        return
    try:
        MlflowClient(tracking_uri).get_experiment_by_name(experiment_name)
    except MlflowException as exc:
        denied = refusal(exc, tracking_uri, f"experiment {experiment_name!r}")
        if denied is not None:  # anything else is met, and explained, where the writer starts
            raise denied from None
