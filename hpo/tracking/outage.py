"""A tracking server that stops answering: which errors mean it is down (worth retrying),
and how long the writer waits for it, with back-off, before the sweep stops."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from hpo.core.checks import first_line

log = logging.getLogger(__name__)

# A tracking server that stops answering: everything stays buffered and is retried, with
# back-off, for this long; then the sweep stops (and can be resumed).
OUTAGE_LIMIT_SECONDS = 120.0
RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)


class TrackingUnavailable(RuntimeError):
    """The tracking server was unreachable for longer than the sweep waits."""


class TrackingRefused(RuntimeError):
    """The tracking server refused hpo's requests for the name it was reached by."""


def refused_host(exc: BaseException) -> bool:
    """Whether ``exc`` is MLflow 3's answer to an unknown Host header (DNS-rebinding guard)."""
    from mlflow.exceptions import MlflowException

    return (
        isinstance(exc, MlflowException)
        and exc.get_http_status_code() == 403
        and "Host header" in str(exc)
    )


def is_transient(exc: BaseException) -> bool:
    """True for errors of a tracking server that is down or restarting: worth retrying.

    A request the server answered with a 4xx (a bad value, a missing run) and an error of
    this process (a misconfiguration) are final.
    """
    import requests
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, RestException):  # the server answered with an error
        return exc.get_http_status_code() >= 500
    if isinstance(exc, MlflowException):
        message = str(exc.message)
        if not message.startswith("API request to"):
            return False
        # The client gives up on a connection it cannot make as "failed with exception".
        no_answer = "failed with exception" in message or "failed with timeout" in message
        return no_answer or exc.get_http_status_code() >= 500
    if isinstance(exc, requests.HTTPError):  # an artifact upload the server refused
        return exc.response is not None and exc.response.status_code >= 500
    return isinstance(
        exc, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError
    )


class ServerDown(Exception):
    """A write failed because the tracking server is unreachable (the cause is attached);
    what was not written is buffered again."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class OutageWait:
    """The writer's patience with a tracking server that does not answer: each failed
    flush waits a little longer (`RETRY_SECONDS`), until the outage has lasted ``limit``
    seconds; then `TrackingUnavailable`, saying how to resume ``sweep_id``.

    ``clock`` and ``sleep`` are the time functions (fakes in tests).

    >>> wait = OutageWait(10.0, "http://mlflow:5000", clock=lambda: 0.0, sleep=lambda s: None)
    >>> wait.failed(ConnectionError("refused"))
    >>> wait.retries, wait.answered()
    (1, 0.0)
    """

    def __init__(
        self,
        limit: float,
        tracking_uri: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.tracking_uri = limit, tracking_uri
        self.clock, self.sleep = clock, sleep
        self.since: float | None = None  # when the outage began
        self.retries = 0
        self.sweep_id: str | None = None  # named in the message that stops the sweep

    def failed(self, cause: BaseException) -> None:
        """A flush failed on ``cause``: back off, or raise once the outage lasted too long."""
        now = self.clock()
        if self.since is None:
            self.since, self.retries = now, 0
            log.warning(
                "the tracking server at %s does not answer (%s); results are buffered and "
                "retried for up to %g s",
                self.tracking_uri,
                first_line(cause),
                self.limit,
            )
        down = now - self.since
        if down > self.limit:
            raise TrackingUnavailable(
                f"the tracking server at {self.tracking_uri} did not answer for {down:.0f} s "
                f"(last error: {first_line(cause)}); the sweep stopped. Once the server is "
                f"back, continue it with: hpo resume {self.sweep_id} --tracking-uri "
                f"{self.tracking_uri}"
            ) from cause
        self.sleep(RETRY_SECONDS[min(self.retries, len(RETRY_SECONDS) - 1)])
        self.retries += 1

    def answered(self) -> float | None:
        """A write went through: how long the outage it ends lasted (None: there was none)."""
        if self.since is None:
            return None
        down, self.since = self.clock() - self.since, None
        log.warning(
            "the tracking server at %s answers again after %.0f s; writing what was buffered",
            self.tracking_uri,
            down,
        )
        return down
