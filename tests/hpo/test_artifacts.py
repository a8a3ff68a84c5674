"""What the objective's report.artifact and report.model pack for the trial's run."""

from __future__ import annotations

import pathlib
import threading

import pytest

from hpo.core.events import Artifact
from hpo.execution.artifacts import check_artifact_name, pack, pack_model
from hpo.execution.worker import _Reporter


@pytest.mark.parametrize("name", ["a.txt", "notes/run 1.txt", "model/MLmodel", "x-y_z.bin"])
def test_plain_relative_names_are_accepted(name):
    assert check_artifact_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/", "tab\tname", 3]
)
def test_names_that_leave_the_run_or_mlflow_would_refuse_are_refused_with_the_value(name):
    with pytest.raises(ValueError, match=repr(name).replace("\\", "\\\\").replace(".", r"\.")):
        check_artifact_name(name)


def test_hpos_own_file_names_are_reserved():
    with pytest.raises(ValueError, match="hpo's own"):
        check_artifact_name("learning_curves.png")


def test_bytes_text_files_and_folders_are_packed(tmp_path):
    assert pack("a.bin", b"\x00\x01") == {"a.bin": b"\x00\x01"}
    assert pack("a.txt", "héllo") == {"a.txt": "héllo".encode()}
    (tmp_path / "f.txt").write_text("file")
    assert pack("copy.txt", tmp_path / "f.txt") == {"copy.txt": b"file"}
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "g.txt").write_text("deep")
    (tmp_path / "d" / "h.txt").write_text("top")
    assert pack("dir", tmp_path / "d") == {"dir/e/g.txt": b"deep", "dir/h.txt": b"top"}


def test_what_cannot_be_packed_says_why(tmp_path):
    with pytest.raises(TypeError, match="must be bytes, str or a pathlib.Path.*got int"):
        pack("a", 3)
    with pytest.raises(FileNotFoundError, match="no file or folder"):
        pack("a", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is empty"):
        pack("a", tmp_path / "empty")
    with pytest.raises(TypeError, match="scikit-learn-compatible estimator"):
        pack_model(object())


def test_a_model_is_packed_in_mlflows_format_and_loads_back(tmp_path):
    import mlflow.sklearn
    from sklearn.datasets import load_iris

    from models import MLPClassifier

    X, y = load_iris(return_X_y=True)
    model = MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y)
    files = pack_model(model, "best")
    assert {"best/MLmodel", "best/model.pkl"} <= set(files)
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    loaded = mlflow.sklearn.load_model(str(tmp_path / "best"))
    assert (loaded.predict(X) == model.predict(X)).all()


def test_the_report_sends_files_as_one_event_in_the_repeats_folder(tmp_path):
    import queue

    events: queue.Queue = queue.Queue()
    report = _Reporter(events, threading.Event(), {}, 0.0, suffix="/repeat_1")
    report.artifact("notes.txt", "n")
    assert events.get_nowait() == Artifact({"repeat_1/notes.txt": b"n"})
    path = pathlib.Path(tmp_path, "x")
    with pytest.raises(FileNotFoundError):
        report.artifact("x", path)


def test_a_model_trained_with_a_reporting_callback_is_stored_without_it():
    import queue

    from sklearn.datasets import load_iris

    from models import MLPClassifier

    events: queue.Queue = queue.Queue()
    report = _Reporter(events, threading.Event(), {}, 0.0)
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier(
        (4,), max_iter=3, random_state=0, epoch_callback=lambda e, m: report(e, **m)
    ).fit(X, y)
    report.model(model)
    *_, stored = [events.get_nowait() for _ in range(events.qsize())]
    assert stored.model == "model" and "model/model.pkl" in stored.files
    assert model.epoch_callback is not None  # the user's estimator is left as it was


def test_an_estimator_that_cannot_be_pickled_fails_with_the_cause():
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    model.lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot store LinearRegression.*lock"):
        pack_model(model)


def test_a_worker_that_can_reach_the_store_writes_there_and_sends_no_bytes(tmp_path):
    import queue

    events: queue.Queue = queue.Queue()
    run_folder = tmp_path / "mlartifacts" / "1" / "run-a" / "artifacts"
    run_folder.mkdir(parents=True)  # made by the tracker with the run
    place: dict = {}
    report = _Reporter(events, threading.Event(), {}, 0.0, place=place)
    report.artifact("early.txt", "before the run existed")  # not located yet: via the driver
    assert events.get_nowait() == Artifact({"early.txt": b"before the run existed"})
    place["store"] = (run_folder.as_uri(), "sqlite:///mlflow.db")  # the driver located it
    report.artifact("notes/late.txt", "x" * 1000)
    assert events.get_nowait() == Artifact({}, stored=("notes/late.txt",))
    assert (run_folder / "notes" / "late.txt").read_text() == "x" * 1000


def test_once_a_checkpoint_went_through_the_driver_the_later_ones_follow_it(tmp_path):
    # Written from the worker, a later checkpoint could reach the store before the driver's
    # writer stores the earlier one, which would then replace it (found by a PBT test: a
    # segment went on from its parent's checkpoint of two steps before).
    import queue

    events: queue.Queue = queue.Queue()
    run_folder = tmp_path / "1" / "run-a" / "artifacts"
    run_folder.mkdir(parents=True)
    place: dict = {}
    report = _Reporter(events, threading.Event(), {}, 0.0, place=place)
    report(0, loss=1.0)
    report.checkpoint("state 0")  # not located yet: through the driver
    assert events.get_nowait().step == 0  # the report
    assert list(events.get_nowait().files) == ["checkpoint.pkl"]
    place["store"] = (run_folder.as_uri(), "sqlite:///mlflow.db")  # the driver located it
    report(1, loss=0.5)
    report.checkpoint("state 1")
    events.get_nowait()  # the report
    assert list(events.get_nowait().files) == ["checkpoint.pkl"]  # still through the driver
    assert not (run_folder / "checkpoint.pkl").exists()
    report.artifact("notes.txt", "other files are written from here")
    assert events.get_nowait().stored == ("notes.txt",)
    # A rerun whose lost attempt's checkpoint the driver still holds starts that way too.
    again = _Reporter(
        events,
        threading.Event(),
        {},
        0.0,
        place={"store": place["store"], "checkpoints_via_driver": True},
    )
    again.checkpoint("state 2")
    assert list(events.get_nowait().files) == ["checkpoint.pkl"]


@pytest.mark.parametrize(
    "store",
    [
        ("file:///no/such/machine/1/run/artifacts", "sqlite:///mlflow.db"),  # another host's disk
        ("s3://bucket/1/run/artifacts", "http://tracking:5000"),  # credentials are elsewhere
        ("mlflow-artifacts:/1/run/artifacts", "sqlite:///mlflow.db"),  # no server to proxy
    ],
)
def test_a_store_the_worker_cannot_reach_gets_the_files_through_the_driver(store):
    import queue

    events: queue.Queue = queue.Queue()
    report = _Reporter(events, threading.Event(), {}, 0.0, place={"store": store})
    report.artifact("a.txt", "a")
    assert events.get_nowait() == Artifact({"a.txt": b"a"})


def test_a_checkpoint_is_stored_at_the_last_step_and_restored_only_when_the_trial_runs_again(
    tmp_path,
):
    import queue

    events: queue.Queue = queue.Queue()
    run_folder = tmp_path / "1" / "run-a" / "artifacts"
    run_folder.mkdir(parents=True)
    store = (run_folder.as_uri(), "sqlite:///mlflow.db")
    first = _Reporter(events, threading.Event(), {}, 0.0, place={"store": store})
    assert first.restore() is None  # a first attempt has nothing to go on from
    for step in range(3):
        first(step, loss=1.0 / (step + 1))
    first.checkpoint({"weights": [1, 2, 3]})
    first(3, loss=0.2)
    first.checkpoint({"weights": [4, 5, 6]})  # replaces the one before
    assert (run_folder / "checkpoint.pkl").is_file()
    resent: queue.Queue = queue.Queue()
    curves: dict = {}
    again = _Reporter(resent, threading.Event(), curves, 0.0, place={"store": store, "rerun": True})
    assert again.restore() == ({"weights": [4, 5, 6]}, 3)
    # The reports up to the checkpoint go to the driver again (the lost attempt may have died
    # before they left it; the driver logs each step once), and into the curves' figure.
    assert [r.step for r in resent.queue] == [0, 1, 2, 3]
    assert curves == {"loss": [(0, 1.0), (1, 0.5), (2, 1.0 / 3), (3, 0.2)]}
    elsewhere = {"store": ((tmp_path / "none").as_uri(), "sqlite:///m.db"), "rerun": True}
    assert _Reporter(events, threading.Event(), {}, 0.0, place=elsewhere).restore() is None
    with pytest.raises(ValueError, match="'checkpoint.pkl' is hpo's own"):
        first.artifact("checkpoint.pkl", b"x")
