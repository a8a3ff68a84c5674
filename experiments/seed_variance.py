"""Run-to-run variance of a small network: the same configuration, different random starts.

The source material's observation: a small MLPClassifier trained four times with different
random starts scored 1.0, 0.5, 0.5, 0.5, so single runs are noisy and repeats over seeds
matter. Here XOR (the four points, scored on themselves) is learned by networks of 1 to 8
hidden units, each configuration trained with 8 seeds (``repeats``: the objective gets the
seed as ``params["seed"]``). The sweep's parent run gets ``best_configurations.csv`` (mean
± standard deviation per configuration) and ``repeats.png`` (every seed's score).

    hpo run experiments/seed_variance.py
"""

from __future__ import annotations

from hpo.space import Choice

direction = "maximize"
strategy = "grid"
repeats = 8

space = {
    "hidden_units": Choice([1, 2, 3, 4, 8]),
    "activation": Choice(["tanh", "relu"]),
}

EPOCHS = 300


def objective(params, report):
    import numpy as np

    from models import MLPClassifier

    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    model = MLPClassifier(
        hidden_layer_sizes=(params["hidden_units"],),
        activation=params["activation"],
        solver="adam",
        learning_rate_init=0.05,
        batch_size=4,
        max_iter=EPOCHS,
        n_iter_no_change=EPOCHS,
        random_state=params["seed"],
    )
    for epoch in range(1, EPOCHS + 1):
        model.partial_fit(X, y, classes=[0, 1])
        if epoch % 10 == 0:
            report(epoch, train_loss=model.loss_curve_[-1], accuracy=model.score(X, y))
    return model.score(X, y)
