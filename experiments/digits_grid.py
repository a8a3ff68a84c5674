"""The eta x lambda grid on digits, as in the lecture notes on neural networks from scratch.

A 64-50-10 network with a sigmoid hidden layer and a softmax output, trained with
mini-batch SGD (batch 100, 100 epochs, no momentum) and an L2 penalty, on scikit-learn's
digits (inputs scaled to [0, 1], 80/20 split). Learning rate and L2 strength both run over
``logspace(-5, 1, 7)``: 49 trials. The objective is validation accuracy; the sweep's
``heatmap.png`` is the accuracy map over the two. Large learning rates can blow up: such a
trial ends FAILED with the divergence as its reason, and the sweep carries on.

    hpo run experiments/digits_grid.py
"""

from __future__ import annotations

from hpo.space import Float

direction = "maximize"
strategy = "grid"

space = {
    "learning_rate": Float(1e-5, 1e1, log=True, grid=7),
    "l2_lambda": Float(1e-5, 1e1, log=True, grid=7),
}

EPOCHS, BATCH, HIDDEN = 100, 100, 50


def load_data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities are 0..16
    return train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)


def objective(params, report, data):
    from models import MLPClassifier

    X_train, X_val, y_train, y_val = data
    model = MLPClassifier(
        hidden_layer_sizes=(HIDDEN,),
        activation="sigmoid",
        solver="sgd",
        momentum=0.0,
        learning_rate_init=params["learning_rate"],
        alpha=params["l2_lambda"],
        batch_size=BATCH,
        max_iter=EPOCHS,
        n_iter_no_change=EPOCHS,  # train every epoch, as the lecture does
        random_state=0,
        epoch_callback=lambda epoch, metrics: report(epoch, **metrics),
    )
    model.fit(X_train, y_train, eval_set=(X_val, y_val))
    report(model.n_iter_, train_accuracy=model.score(X_train, y_train))
    report.model(model)  # the sweep's best model: hpo.load_best_model(sweep_id)
    return model.score(X_val, y_val)
