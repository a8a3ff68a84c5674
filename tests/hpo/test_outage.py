"""The outage logic without a server: which errors mean the tracking server is down, the
writer's back-off and its limit, and the run buffer that keeps what was not written."""

from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException

from hpo.tracking.outage import (
    RETRY_SECONDS,
    OutageWait,
    TrackingUnavailable,
    is_transient,
    refused_host,
)
from hpo.tracking.writer import _RunBuffer


def rest_error(status: int, message: str = "boom") -> RestException:
    code = {
        400: "INVALID_PARAMETER_VALUE",
        403: "PERMISSION_DENIED",
        404: "RESOURCE_DOES_NOT_EXIST",
    }
    return RestException({"error_code": code.get(status, "INTERNAL_ERROR"), "message": message})


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (rest_error(500), True),  # the server answered, failing: it may be restarting
        (rest_error(400), False),  # a bad value: retrying cannot help
        (rest_error(404), False),
        (MlflowException("API request to http://h/api failed with exception boom"), True),
        (MlflowException("API request to http://h/api failed with timeout 15"), True),
        (MlflowException("Run 'x' not found"), False),  # this process's own error
        (requests.ConnectionError("refused"), True),
        (requests.Timeout("slow"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (ValueError("bad"), False),
    ],
)
def test_only_errors_of_a_server_that_is_down_are_transient(error, transient):
    assert is_transient(error) is transient


def test_an_artifact_upload_refused_by_the_server_is_transient_only_for_5xx():
    for status, transient in ((502, True), (403, False)):
        response = requests.Response()
        response.status_code = status
        assert is_transient(requests.HTTPError(response=response)) is transient


def test_a_refused_host_header_is_told_apart_from_other_403s():
    assert refused_host(rest_error(403, "Invalid Host header - possible DNS rebinding attack"))
    assert not refused_host(rest_error(403, "Permission denied"))
    assert not refused_host(rest_error(500, "Host header"))


class Clock:
    def __init__(self) -> None:
        self.now, self.slept = 100.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_wait_backs_off_and_stops_the_sweep_past_its_limit_saying_how_to_resume():
    clock = Clock()
    wait = OutageWait(20.0, "http://mlflow:5000", clock=clock, sleep=clock.sleep)
    wait.sweep_id = "abc"
    with pytest.raises(TrackingUnavailable) as stopped:
        for _ in range(100):  # bounded: the limit must end it well before
            wait.failed(ConnectionError("refused"))
    assert clock.slept[: len(RETRY_SECONDS)] == list(RETRY_SECONDS)
    assert set(clock.slept[len(RETRY_SECONDS) :]) <= {RETRY_SECONDS[-1]}  # then the longest
    assert sum(clock.slept) > 20.0 and sum(clock.slept) <= 20.0 + RETRY_SECONDS[-1]
    message = str(stopped.value)
    assert "did not answer for" in message and "ConnectionError: refused" in message
    assert "hpo resume abc --tracking-uri http://mlflow:5000" in message


def test_an_answer_ends_the_outage_and_the_next_one_starts_its_clock_again():
    clock = Clock()
    wait = OutageWait(10.0, "http://mlflow:5000", clock=clock, sleep=clock.sleep)
    assert wait.answered() is None  # no outage to end
    for _ in range(4):
        wait.failed(ConnectionError("refused"))  # 0.5 + 1 + 2 + 4 = 7.5 s
    assert wait.answered() == pytest.approx(7.5)
    clock.now += 1000.0  # long after: a new outage gets the whole limit again
    for _ in range(4):
        wait.failed(ConnectionError("refused"))
    assert wait.retries == 4 and clock.slept[-4:] == list(RETRY_SECONDS[:4])


def test_the_run_buffer_gives_its_pending_writes_once_and_takes_back_what_failed():
    buffer = _RunBuffer(number=3, start_ms=0, run_name="trial-3", create_tags={})
    buffer.params = {"x": "1"}
    buffer.tags = {"hpo.state": "RUNNING"}
    buffer.metrics = [("loss", 1.0, 10, 0)]
    buffer.artifacts = [("a.txt", b"a")]
    taken = buffer.take()
    assert (taken.params, taken.metrics, taken.artifacts) == (
        {"x": "1"},
        [("loss", 1.0, 10, 0)],
        [("a.txt", b"a")],
    )
    assert not (buffer.params or buffer.tags or buffer.metrics or buffer.artifacts)
    # Reported while the write was failing: kept after what failed, in order.
    buffer.metrics = [("loss", 0.5, 20, 1)]
    buffer.tags = {"hpo.state": "COMPLETE"}
    buffer.end = ("FINISHED", 30)
    taken.metrics = taken.metrics[:]  # nothing of it was written
    buffer.put_back(taken)
    assert buffer.metrics == [("loss", 1.0, 10, 0), ("loss", 0.5, 20, 1)]
    assert buffer.tags == {"hpo.state": "COMPLETE"}  # the newer value of a tag wins
    assert buffer.params == {"x": "1"} and buffer.artifacts == [("a.txt", b"a")]
    assert buffer.end == ("FINISHED", 30) and buffer.dirty()
