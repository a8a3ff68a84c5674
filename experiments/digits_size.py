"""Accuracy against size on digits: two objectives, a Pareto front.

A network for a small device must be good and small at once, and which trade-off to take
is decided after seeing what is possible: this sweep searches for the Pareto front of the
validation error and the number of weights (both minimised) of our MLP on digits, over its
width, depth and learning rate. `hpo show SWEEP_ID` lists the front; the parent run holds
`pareto_front.csv` and `pareto_front.png`, and each trial's run its model.

    hpo run experiments/digits_size.py
"""

from __future__ import annotations

from hpo.space import Choice, Float, Int

direction = ["minimize", "minimize"]
objective_names = ["val_error", "weights"]
strategy = "gp"  # ParEGO: random weights over the two objectives at each ask
n_trials = 40

space = {
    "learning_rate": Float(1e-3, 3e-2, log=True),
    "layers": Choice(
        [
            {"units": [Int(2, 256, log=True)]},
            {"units": [Int(2, 256, log=True), Int(2, 256, log=True)]},
        ]
    ),
}

EPOCHS = 30


def load_data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.2, random_state=0, stratify=y)


def objective(params, report, data):
    from models import MLPClassifier

    X_train, X_val, y_train, y_val = data
    model = MLPClassifier(
        hidden_layer_sizes=tuple(params["layers"]["units"]),
        learning_rate_init=params["learning_rate"],
        max_iter=EPOCHS,
        n_iter_no_change=EPOCHS,
        random_state=0,
        epoch_callback=lambda epoch, metrics: report(epoch, **metrics),
    )
    model.fit(X_train, y_train, eval_set=(X_val, y_val))
    report.model(model)
    weights = sum(W.size + b.size for W, b in zip(model.coefs_, model.intercepts_, strict=True))
    return {"val_error": 1.0 - model.score(X_val, y_val), "weights": float(weights)}
