"""Publishing the sweep's best model on a real sqlite MLflow store in a temporary
directory: a logged model listed on the sweep, one registered version per sweep."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_iris

from hpo.execution.artifacts import pack_model
from hpo.strategies.base import Trial, TrialState
from hpo.sweep.lifecycle import TrialRecord
from hpo.tracking.best_model import load_best_model, publish_best_model
from hpo.tracking.schema import SweepTag
from models import MLPClassifier


@pytest.mark.slow
def test_publishing_twice_as_a_resume_does_registers_one_version(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    sweep = client.create_run(experiment, tags={"hpo.sweep": "true"}).info.run_id
    trial_run = client.create_run(experiment, tags={"mlflow.parentRunId": sweep})
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y)
    for path, content in pack_model(model).items():
        local = tmp_path / "upload" / path
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(content)
    client.log_artifacts(trial_run.info.run_id, str(tmp_path / "upload"))
    best = TrialRecord(
        Trial(3, {}, {}, {"units": 4}, state=TrialState.COMPLETE, value=0.9),
        run_id=trial_run.info.run_id,
        models=["model"],
    )
    kwargs = dict(
        experiment_id=experiment,
        sweep_id=sweep,
        name="e-best",
        best=best,
        objective="0.9",
        register_as="iris",
    )
    first = publish_best_model(client, previous_tags={}, **kwargs)
    again = publish_best_model(client, previous_tags=first, **kwargs)  # a resumed sweep's end
    assert again == first and first["hpo.registered_model"] == "iris/1"
    assert first[SweepTag.BEST_MODEL_URI] == f"runs:/{trial_run.info.run_id}/model"
    assert len(client.search_model_versions("name = 'iris'")) == 1
    assert len(client.search_logged_models([experiment])) == 1
    for key, value in first.items():
        client.set_tag(sweep, key, value)
    loaded = load_best_model(sweep, tracking_uri=uri)
    assert (loaded.predict(X) == model.predict(X)).all()
