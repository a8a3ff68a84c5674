"""Files and models from the objective, the sweep's best model and the Model Registry
(real Ray, real sqlite MLflow)."""

from __future__ import annotations

import numpy as np
import objectives
import pytest
from conftest import by_trial, child_runs
from ray import cloudpickle
from sklearn.datasets import load_iris

import hpo
from hpo.space import Int

cloudpickle.register_pickle_by_value(objectives)

pytestmark = pytest.mark.integration


def test_trials_store_files_and_models_and_the_best_is_published_and_registered(
    ray_cluster, tracking_uri, client, tmp_path
):
    import mlflow

    X, y = load_iris(return_X_y=True)
    result = hpo.run(
        {"units": Int(1, 16)},
        objectives.with_model,
        strategy=hpo.make_strategy("grid", {"units": Int(1, 16)}, direction="maximize"),
        n_trials=4,
        data=(X / 8.0, y),
        direction="maximize",
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="models",
        progress=False,
        register_model="iris-mlp",
    )
    runs = by_trial(child_runs(client, result.sweep_id))
    failed = [t for t in result.trials if t.params["units"] == 3]
    assert failed[0].state.value == "FAILED" and "without '..'" in failed[0].error
    done = [t for t in result.trials if t.state.value == "COMPLETE"]
    assert len(done) == 3
    for trial in done:
        run_id = runs[trial.number].info.run_id
        paths = {a.path for a in client.list_artifacts(run_id)}
        assert {"notes", "weights.bin", "folder", "model", "learning_curves.png"} <= paths
        notes = client.download_artifacts(run_id, "notes/params.txt", str(tmp_path))
        assert open(notes).read() == f"units={trial.params['units']}"
        folder = client.download_artifacts(run_id, "folder", str(tmp_path / f"f{trial.number}"))
        assert open(f"{folder}/sub/b.txt").read() == "b" and open(f"{folder}/a.txt").read() == "a"
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(tracking_uri)
        try:
            model = mlflow.sklearn.load_model(f"runs:/{run_id}/model")
        finally:
            mlflow.set_tracking_uri(previous)
        assert model.hidden_layer_sizes == (trial.params["units"],)
        assert model.score(X / 8.0, y) == trial.value
        weights = client.download_artifacts(run_id, "weights.bin", str(tmp_path / "w"))
        np.testing.assert_array_equal(np.fromfile(weights).reshape(4, -1), model.coefs_[0])

    best = result.best_trial
    parent = client.get_run(result.sweep_id)
    tags = parent.data.tags
    assert tags["hpo.best_model_uri"] == f"runs:/{best.run_id}/model"
    assert tags["hpo.best_model_trial"] == tags["hpo.best_trial"] == str(best.number)
    assert "Best model: `runs:/" in tags["mlflow.note.content"]
    loaded = hpo.load_best_model(result.sweep_id, tracking_uri=tracking_uri)
    assert loaded.hidden_layer_sizes == (best.params["units"],)
    assert loaded.score(X / 8.0, y) == best.value
    # Any trial's model, by its number; refusals say what is missing.
    [other] = [t for t in done if t.number != best.number][:1]
    model = hpo.load_trial_model(result.sweep_id, other.number, tracking_uri=tracking_uri)
    assert model.hidden_layer_sizes == (other.params["units"],)
    assert model.score(X / 8.0, y) == other.value
    for trial, says in [
        (failed[0].number, f"trial {failed[0].number} of sweep .* stored no model named 'model'"),
        (99, "has no trial 99"),
        (-1, "trial must be an int >= 0, got -1"),
    ]:
        with pytest.raises(ValueError, match=says):
            hpo.load_trial_model(result.sweep_id, trial, tracking_uri=tracking_uri)
    # One of MLflow's logged models, from the best trial's run, listed as the sweep's output.
    logged = client.get_logged_model(tags["hpo.best_model_id"])
    assert logged.source_run_id == best.run_id and logged.tags["hpo.sweep_id"] == result.sweep_id
    assert [o.model_id for o in parent.outputs.model_outputs] == [logged.model_id]
    # Registered once, tagged with the sweep and the objective.
    [version] = client.search_model_versions("name = 'iris-mlp'")
    assert tags["hpo.registered_model"] == f"iris-mlp/{version.version}"
    assert version.tags["hpo.sweep_id"] == result.sweep_id
    assert float(version.tags["hpo.objective"]) == best.value and version.tags["hpo.trial"] == str(
        best.number
    )
    assert version.run_id == result.sweep_id and version.source == logged.artifact_location
    assert result.best_model == tags["hpo.best_model_uri"] and result.model_note is None
    assert f"(registered as iris-mlp/{version.version})" in result.summary()


def test_a_sweep_whose_trials_store_no_model_has_no_best_model(
    ray_cluster, tracking_uri, client, capsys
):
    result = hpo.run(
        {"x": hpo.space.Float(0.0, 1.0)},
        objectives.quadratic,
        n_trials=2,
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="no-model",
        progress=False,
        register_model="never",
    )
    tags = client.get_run(result.sweep_id).data.tags
    assert "hpo.best_model_uri" not in tags
    # register_model found nothing to register: said in the summary, on stderr and as a tag.
    said = (
        f"nothing registered as 'never': the best trial ({result.best_trial.number}) stored "
        "no model; the objective stores one with report.model(estimator)"
    )
    assert tags["hpo.best_model_error"] == said == result.model_note
    assert f"warning: {said}" in result.summary() and said in capsys.readouterr().err
    assert client.search_registered_models(filter_string="name = 'never'") == []
    with pytest.raises(ValueError, match="has no best model"):
        hpo.load_best_model(result.sweep_id, tracking_uri=tracking_uri)
