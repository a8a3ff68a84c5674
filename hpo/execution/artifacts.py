"""Files an objective stores with its trial: `report.artifact(name, data)` and
`report.model(estimator)`, packed in the worker into ``{path: bytes}`` for the trial's run.

Once the trial's run exists the driver tells the worker where its artifacts go; a worker
that can reach that store writes the files there itself (`hpo.execution.worker._Reporter`),
so they never pass through the driver. Otherwise they travel to the driver with the
trial's other events (through Ray, so a worker on another machine needs no access to the
driver's disk or the artifact store) and the tracker writes them: a file passes through the
driver's memory once.
"""

from __future__ import annotations

import copy
import logging
import os
import posixpath
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from hpo.tracking.store import is_server

CHECKPOINT = "checkpoint.pkl"  # a trial's last `report.checkpoint`, in its run
# Names of the files hpo itself stores in a trial's run.
RESERVED = ("learning_curves.png", "traceback.txt", CHECKPOINT)
_NAME = re.compile(r"[\w.\- ]+(/[\w.\- ]+)*")


def check_artifact_name(name: Any) -> str:
    """``name`` if it is a plain relative path inside the run's artifacts, else ValueError."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an artifact name must be a non-empty string, got {name!r}")
    parts = name.split("/")
    if (
        not _NAME.fullmatch(name)
        or any(p in (".", "..") for p in parts)
        or posixpath.normpath(name) != name
    ):
        raise ValueError(
            "an artifact name must be a relative path of letters, digits, _ - . and spaces "
            f"without '..' (it stays inside the trial's run), got {name!r}"
        )
    if name in RESERVED:
        raise ValueError(f"artifact name {name!r} is hpo's own; choose another")
    return name


def pack(name: str, data: Any) -> dict[str, bytes]:
    """The files of ``report.artifact(name, data)``: ``bytes`` or ``str`` is the file's
    content; a `pathlib.Path` (or other path object) names a file, or a folder stored
    under ``name`` with everything in it."""
    name = check_artifact_name(name)
    if isinstance(data, bytes | bytearray | memoryview):
        return {name: bytes(data)}
    if isinstance(data, str):
        return {name: data.encode()}
    if isinstance(data, os.PathLike):
        path = Path(data)
        if path.is_file():
            return {name: path.read_bytes()}
        if path.is_dir():
            files = {
                f"{name}/{f.relative_to(path).as_posix()}": f.read_bytes()
                for f in sorted(path.rglob("*"))
                if f.is_file()
            }
            if not files:
                raise ValueError(f"report.artifact({name!r}): the folder {path} is empty")
            return files
        raise FileNotFoundError(f"report.artifact({name!r}): no file or folder at {path}")
    raise TypeError(
        f"report.artifact({name!r}, data): data must be bytes, str or a pathlib.Path to a "
        f"file or folder, got {type(data).__name__}"
    )


def pack_model(estimator: Any, name: str = "model") -> dict[str, bytes]:
    """The files of ``estimator`` in MLflow's scikit-learn format, under folder ``name``,
    so that ``mlflow.sklearn.load_model(f"runs:/{run_id}/{name}")`` loads it."""
    name = check_artifact_name(name)
    if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
        raise TypeError(
            "report.model(estimator) needs a scikit-learn-compatible estimator (with fit and "
            f"get_params), got {type(estimator).__name__}"
        )
    if estimator.get_params(deep=False).get("epoch_callback") is not None:
        # Our models' callback holds the trial's report (a queue, a lock): not the model's.
        estimator = copy.copy(estimator)
        estimator.set_params(epoch_callback=None)
    import cloudpickle
    import mlflow.sklearn
    import numpy
    import scipy
    import sklearn

    # Stated, not inferred: inference loads the model again in a subprocess (seconds).
    requirements = [
        f"{module.__name__.replace('sklearn', 'scikit-learn')}=={module.__version__}"
        for module in (sklearn, numpy, scipy, cloudpickle)
    ]
    with tempfile.TemporaryDirectory(prefix="hpo-model-") as tmp:
        folder = Path(tmp, "model")
        # MLflow warns on every save that pickles execute code when loaded: said once, in
        # the README, rather than on the user's screen for every trial.
        quiet = logging.getLogger("mlflow.sklearn")
        level, quiet.level = quiet.level, logging.ERROR
        try:
            mlflow.sklearn.save_model(
                estimator,
                str(folder),
                serialization_format="cloudpickle",
                pip_requirements=requirements,
            )
        except Exception as exc:  # noqa: BLE001 - becomes the trial's reason, with its cause
            cause = exc.__cause__ or exc  # MLflow wraps the pickling error
            raise TypeError(
                f"report.model(): cannot store {type(estimator).__name__} in MLflow's "
                f"scikit-learn format: {type(cause).__name__}: {cause}"
            ) from exc
        finally:
            quiet.setLevel(level)
        return pack(name, folder)


def write_artifacts(uri: str, tracking_uri: str, artifacts: list[tuple[str, bytes]]) -> None:
    """Store ``artifacts`` (name, content) under artifact URI ``uri``, removing each from the
    list once stored. Used by the tracker, and by a worker that can reach the store."""
    folder = local_artifact_dir(uri)
    if folder is not None:
        # A local store is a folder: write each file in place, without the repository's
        # temporary copy (that copy cost as much as a tenth of a trial's MLflow writes).
        while artifacts:
            name, content = artifacts[0]
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            partial.write_bytes(content)
            partial.replace(target)  # never a half-written file under its name
            artifacts.pop(0)
        return
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(uri, tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="hpo-artifacts-") as tmp:
        while artifacts:
            name, content = artifacts[0]
            path = Path(tmp, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            # A name with folders (model/MLmodel) keeps them in the store.
            repo.log_artifact(str(path), posixpath.dirname(name) or None)
            path.unlink()
            artifacts.pop(0)


def read_artifact(uri: str, tracking_uri: str, name: str) -> bytes | None:
    """The content of artifact ``name`` under artifact URI ``uri``, or None when there is
    no such file (or the store cannot be read from here)."""
    folder = local_artifact_dir(uri)
    if folder is not None:
        path = folder / name
        return path.read_bytes() if path.is_file() else None
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(uri, tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="hpo-artifacts-") as tmp:
        try:
            return Path(repo.download_artifacts(name, dst_path=tmp)).read_bytes()
        except Exception:  # noqa: BLE001 - absent, or not readable: no checkpoint to go on from
            return None


def reachable_store(uri: str, tracking_uri: str) -> bool:
    """Whether this process can write to artifact URI ``uri`` itself: a local folder whose
    experiment folder exists here (not a path on another machine), or artifacts proxied by
    a tracking server. Any other store (S3, ...) needs credentials that only the driver's
    side is known to have."""
    folder = local_artifact_dir(uri)
    if folder is not None:
        return folder.is_dir()  # made by the tracker with the run: on this machine's disk
    proxied = urlparse(uri).scheme == "mlflow-artifacts"
    return proxied and is_server(tracking_uri)


def local_artifact_dir(uri: str) -> Path | None:
    """The folder of a ``file://`` (or plain path) artifact URI; None for any other store."""
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(url2pathname(parsed.path))
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None
