"""The framework callbacks against the real XGBoost, LightGBM and Lightning, with a
``report`` of our own standing in for a trial's (no Ray): what reaches ``report`` each
round, and that a pruned trial's training stops at the round its report raises."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from hpo.strategies.pruners import TrialPruned


class Report:
    """Keeps each report; raises TrialPruned from report ``prune_at`` on (as a trial's
    report does once the pruner stopped it); keeps checkpoints as a trial's would."""

    def __init__(self, prune_at=None, restored=None):
        self.calls, self.prune_at = [], prune_at
        self.checkpoints, self.restored = [], restored

    def __call__(self, step, **metrics):
        if self.prune_at is not None and len(self.calls) >= self.prune_at:
            raise TrialPruned("the trial was pruned")
        self.calls.append((step, metrics))

    def checkpoint(self, state):
        pickle.dumps(state)  # what a trial's report does with it
        self.checkpoints.append((self.calls[-1][0], state))

    def restore(self):
        return self.restored


def test_xgboost_reports_each_round_and_stops_when_pruned():
    import xgboost

    from hpo.integrations.xgboost import XGBoostCallback

    X, y = load_breast_cancer(return_X_y=True)
    report = Report()
    model = xgboost.XGBClassifier(n_estimators=12, callbacks=[XGBoostCallback(report)])
    model.fit(X[:400], y[:400], eval_set=[(X[:400], y[:400]), (X[400:], y[400:])], verbose=False)
    assert [step for step, _ in report.calls] == list(range(12))
    assert set(report.calls[0][1]) == {"validation_0-logloss", "validation_1-logloss"}
    losses = model.evals_result()["validation_1"]["logloss"]
    assert [m["validation_1-logloss"] for _, m in report.calls] == pytest.approx(losses)

    pruned = Report(prune_at=4)
    chosen = XGBoostCallback(pruned, metrics=["validation_0-logloss"])
    model = xgboost.XGBClassifier(n_estimators=50, callbacks=[chosen])
    with pytest.raises(TrialPruned):
        model.fit(X, y, eval_set=[(X, y)], verbose=False)
    assert [step for step, _ in pruned.calls] == [0, 1, 2, 3]
    assert set(pruned.calls[0][1]) == {"validation_0-logloss"}


def test_lightgbm_reports_each_round_and_stops_when_pruned():
    import lightgbm

    from hpo.integrations.lightgbm import LightGBMCallback

    X, y = load_diabetes(return_X_y=True)
    report = Report()
    model = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1)
    model.fit(
        X[:300], y[:300], eval_X=X[300:], eval_y=y[300:], callbacks=[LightGBMCallback(report)]
    )
    assert [step for step, _ in report.calls] == list(range(10))
    losses = model.evals_result_["valid_0"]["l2"]
    assert [m["valid_0-l2"] for _, m in report.calls] == pytest.approx(losses)

    pruned = Report(prune_at=3)
    seen = []
    train = lightgbm.Dataset(X[:300], y[:300])
    with pytest.raises(TrialPruned):
        lightgbm.train(
            {"objective": "l2", "verbose": -1},
            train,
            num_boost_round=40,
            valid_sets=[lightgbm.Dataset(X[300:], y[300:], reference=train)],
            callbacks=[LightGBMCallback(pruned), lambda env: seen.append(env.iteration)],
        )
    assert [step for step, _ in pruned.calls] == [0, 1, 2]
    assert max(seen) == 2  # no round after the pruned one


def _digits_fit(report, epochs, ckpt_from=None):
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from hpo.integrations.lightning import LightningCallback
    from hpo.sweep.experiment_file import load_experiment

    exp = load_experiment("experiments/lightning_digits.py")
    X_train, X_val, y_train, y_val = exp.load_data()
    torch.manual_seed(0)
    module = __import__(exp.objective.__module__, fromlist=["make_module"]).make_module(32, 1e-2)
    callback = LightningCallback(report)
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    data = TensorDataset(torch.from_numpy(X_train), torch.from_numpy(y_train))
    valid = TensorDataset(torch.from_numpy(X_val), torch.from_numpy(y_val))
    trainer.fit(
        module,
        DataLoader(data, batch_size=64),
        DataLoader(valid, batch_size=256),
        ckpt_path=callback.resume_from(),
    )
    return trainer


@pytest.mark.slow
def test_lightning_reports_epochs_prunes_the_fit_and_resumes_from_its_checkpoint():
    report = Report()
    trainer = _digits_fit(report, epochs=3)
    assert [step for step, _ in report.calls] == [0, 1, 2]
    assert set(report.calls[0][1]) == {"val_loss", "val_accuracy"}
    assert report.calls[-1][1]["val_accuracy"] == pytest.approx(
        float(trainer.callback_metrics["val_accuracy"])
    )
    assert [step for step, _ in report.checkpoints] == [0, 1, 2]

    pruned = Report(prune_at=2)
    with pytest.raises(TrialPruned):
        _digits_fit(pruned, epochs=10)
    assert [step for step, _ in pruned.calls] == [0, 1]

    # A run again of the trial: the fit goes on from the checkpoint of epoch 1.
    saved_step, saved = report.checkpoints[1]
    again = Report(restored=(saved, saved_step))
    trainer = _digits_fit(again, epochs=4)
    assert [step for step, _ in again.calls] == [2, 3]
    assert np.isfinite(again.calls[-1][1]["val_loss"])


class FailsOnThirdFit:
    """A classifier whose third fit (of any instance: folds are clones) raises."""

    fits = 0

    def __init__(self, c=1.0):
        self.c = c

    def get_params(self, deep=True):
        return {"c": self.c}

    def set_params(self, **params):
        self.c = params.get("c", self.c)
        return self

    def fit(self, X, y):
        FailsOnThirdFit.fits += 1
        if FailsOnThirdFit.fits == 3:
            raise ValueError("the third fit fails")
        self.classes_ = np.unique(y)
        return self

    def score(self, X, y):
        return 0.5


def _folds(estimator, *, pruned, error_score="raise"):
    from sklearn.datasets import load_iris
    from sklearn.metrics import check_scoring
    from sklearn.model_selection import StratifiedKFold

    from hpo.integrations.searchcv import SINGLE, Folds

    X, y = load_iris(return_X_y=True)
    splits = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    scorer = check_scoring(estimator) if hasattr(estimator, "score") else None
    return Folds(estimator, X, y, splits, {SINGLE: scorer}, SINGLE, {}, error_score, False, pruned)


@pytest.mark.parametrize("pruned", [False, True])
def test_searchcv_reports_every_fold_as_a_step_pruned_or_not(pruned):
    from sklearn.linear_model import LogisticRegression

    from hpo.integrations.searchcv import cross_validate_trial

    report = Report()
    value = cross_validate_trial({"C": 1.0}, report, _folds(LogisticRegression(), pruned=pruned))
    assert [step for step, _ in report.calls] == [0, 1, 2, 3, 4]
    scores = [m[f"split{k}_test_score"] for k, m in report.calls]
    assert report.calls[-1][1]["mean_test_score"] == pytest.approx(np.mean(scores))
    assert value == pytest.approx(np.mean(scores))


def test_searchcv_without_a_pruner_still_reports_the_folds_before_a_failing_one():
    from hpo.integrations.searchcv import cross_validate_trial

    FailsOnThirdFit.fits = 0
    report = Report()
    with pytest.raises(ValueError, match="the third fit fails"):
        cross_validate_trial({"c": 2.0}, report, _folds(FailsOnThirdFit(), pruned=False))
    assert [step for step, _ in report.calls] == [0, 1]  # the two folds that were scored


def test_searchcv_holds_the_folds_without_a_pruner_and_streams_them_with_one():
    from sklearn.linear_model import LogisticRegression

    from hpo.integrations.searchcv import cross_validate_trial

    seen_at_fit = []

    class Watching(LogisticRegression):
        def fit(self, X, y):
            seen_at_fit.append(len(report.calls))  # reports made before this fold's fit
            return super().fit(X, y)

    for pruned, expected in ((True, [0, 1, 2, 3, 4]), (False, [0, 0, 0, 0, 0])):
        report, seen_at_fit[:] = Report(), []
        cross_validate_trial({}, report, _folds(Watching(), pruned=pruned))
        assert seen_at_fit == expected
