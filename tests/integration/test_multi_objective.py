"""A sweep of two objectives end to end on a real local Ray cluster and a real sqlite
store: each objective a metric, the Pareto front in the parent run, read back, resumed."""

from __future__ import annotations

import csv
import io

import objectives
import pytest
from conftest import child_runs
from ray import cloudpickle

import hpo
from hpo.report.show import show_sweep
from hpo.space import Float

cloudpickle.register_pickle_by_value(objectives)

pytestmark = pytest.mark.integration

SPACE = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}


def brute_front(points: dict[int, tuple[float, float]]) -> set[int]:
    """Trials no other trial beats in both objectives (both minimised), pair by pair."""
    return {
        n
        for n, (a, b) in points.items()
        if not any(c <= a and d <= b and (c < a or d < b) for c, d in points.values())
    }


def test_a_two_objective_sweep_records_its_pareto_front_and_resumes(
    ray_cluster, tracking_uri, client
):
    call = {"tracking_uri": tracking_uri, "experiment_name": "mo", "progress": False}
    result = hpo.run(
        SPACE,
        objectives.error_and_size,
        direction=["minimize", "minimize"],
        strategy="gp",
        n_trials=8,
        workers=2,
        seed=5,
        **call,
    )
    assert result.objective_names == ("error", "size") and result.n_complete == 8
    runs = {int(r.data.tags["hpo.trial"]): r for r in child_runs(client, result.sweep_id)}
    points = {n: (r.data.metrics["error"], r.data.metrics["size"]) for n, r in runs.items()}
    for t in result.trials:  # each objective is its own metric on the trial's run
        assert t.values == points[t.number] and "objective" not in runs[t.number].data.metrics
    front = brute_front(points)
    assert {t.number for t in result.best_trials} == front
    parent = client.get_run(result.sweep_id)
    tags = parent.data.tags
    assert tags["hpo.direction"] == "minimize,minimize"
    assert tags["hpo.objectives"] == '["error", "size"]' and tags["hpo.n_pareto"] == str(len(front))
    assert {int(n) for n in tags["hpo.pareto_front"].split(", ")} == front
    rows = list(csv.DictReader(io.StringIO(_artifact(client, result.sweep_id, "pareto_front.csv"))))
    assert {int(row["trial"]) for row in rows} == front
    for row in rows:
        assert (float(row["error"]), float(row["size"])) == points[int(row["trial"])]
        assert row["run_id"] == runs[int(row["trial"])].info.run_id
    for figure in ("pareto_front.png", "slices.png", "param_importance.png"):
        assert _artifact(client, result.sweep_id, figure, binary=True)[:4] == b"\x89PNG"
    assert "Pareto front" in tags["mlflow.note.content"]

    with pytest.raises(ValueError, match="several objectives, so no one best model: pick a"):
        hpo.load_best_model(result.sweep_id, tracking_uri=tracking_uri)
    loaded = hpo.load_sweep(result.sweep_id, tracking_uri=tracking_uri)
    assert {t.number for t in loaded.best_trials} == front
    shown = show_sweep(client, result.sweep_id)
    assert f"Pareto front, {len(front)} trials:" in shown
    assert shown.split("Pareto front")[1].splitlines()[1].split()[:3] == ["trial", "error", "size"]

    # Resumed to 12 trials: the 8 come back with their values, the front takes in the new.
    more = hpo.resume(
        result.sweep_id,
        SPACE,
        objectives.error_and_size,
        n_trials=12,
        workers=2,
        tracking_uri=tracking_uri,
        progress=False,
    )
    assert [t.values for t in more.trials[:8]] == [t.values for t in result.trials]
    assert more.n_complete == 12 and len(child_runs(client, result.sweep_id)) == 12
    points = {t.number: t.values for t in more.trials}
    assert {t.number for t in more.best_trials} == brute_front(points)
    tags = client.get_run(result.sweep_id).data.tags
    assert tags["hpo.n_pareto"] == str(len(brute_front(points)))


def test_curves_named_like_the_objectives_fail_their_trials_and_stay_off_the_front(
    ray_cluster, tracking_uri, client
):
    result = hpo.run(
        SPACE,
        objectives.curves_named_like_objectives,
        direction=["minimize", "minimize"],
        enqueue=[{"x": 0.9, "y": 0.0}],  # the first trial names the objectives, and clashes
        n_trials=6,
        workers=1,
        seed=3,
        tracking_uri=tracking_uri,
        experiment_name="clash",
        progress=False,
    )
    clashed = [t for t in result.trials if t.params["x"] > 0.8]
    assert clashed and all(t.state.value == "FAILED" for t in clashed)
    assert all(t.error.startswith("a metric given to report() must not be") for t in clashed)
    done = {t.number for t in result.trials if t.state.value == "COMPLETE"}
    assert done == {t.number for t in result.trials} - {t.number for t in clashed}
    # The first trial's curves were logged before its result named the objectives: they
    # stay in its FAILED run, and nothing reads them as its values.
    loaded = hpo.load_sweep(result.sweep_id, tracking_uri=tracking_uri)
    assert loaded.trials[0].state.value == "FAILED" and loaded.trials[0].values is None
    assert {t.number for t in loaded.best_trials} <= done
    shown = show_sweep(client, result.sweep_id).split("Pareto front")[1].splitlines()[2:]
    assert {int(line.split()[0]) for line in shown if line.strip()[:1].isdigit()} <= done


def _artifact(client, run_id, path, binary=False):
    import mlflow

    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=path, tracking_uri=client._tracking_client.tracking_uri
    )
    with open(local, "rb") as f:
        data = f.read()
    return data if binary else data.decode()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pruner": "median"}, r"pruner='median' ranks trials by one value"),
        ({"stop_at": 0.1}, r"stop_at=0.1 ranks trials by one value"),
        ({"repeats": 3}, r"repeats=3 ranks trials by one value"),
        ({"register_model": "m"}, r"register_model='m' ranks trials by one value"),
        ({"strategy": "hyperopt-tpe"}, r"the hyperopt-tpe strategy optimises one objective"),
        ({"strategy": "optuna:cmaes"}, r"CmaEsSampler optimises one objective"),
        ({"objective_names": ["error"]}, r"objective_names must be a list of 2 names"),
        ({"objective_names": ["a", "a"]}, r"objective_names must differ"),
        ({"objective_names": ["a", "b c?"]}, r"objective name may only contain"),
        ({"direction": ["minimize", "up"]}, r"each direction must be 'minimize' or 'maximize'"),
        ({"direction": []}, r"or a non-empty list of them \(one per objective\), got \[\]"),
        (
            {"direction": "minimize", "objective_names": ["a"]},
            r"objective_names names several objectives, but the sweep has one direction",
        ),
    ],
)
def test_what_several_objectives_cannot_take_is_refused_before_anything(
    ray_cluster, tmp_path, kwargs, message
):
    call = {"direction": ["minimize", "maximize"], "n_trials": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        hpo.run(
            SPACE,
            objectives.error_and_size,
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
            experiment_name="refused",
            progress=False,
            **call,
        )
    assert not (tmp_path / "mlflow.db").exists()  # no store, no run was made
