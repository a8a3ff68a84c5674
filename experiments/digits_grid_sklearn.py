"""The eta x lambda grid on digits with scikit-learn's own MLPClassifier, as the lecture notes
repeat it: any scikit-learn estimator sweeps the same way as the project's models.

The same 49-point grid as ``digits_grid.py`` (learning rate and L2 strength both over
``logspace(-5, 1, 7)``), the same data (digits scaled to [0, 1], 80/20 split) and the same
64-50-10 network with a logistic hidden layer, plain mini-batch SGD (batch 100, no
momentum) for 100 epochs. The estimator is trained one epoch at a time (``partial_fit``), so
that the learning curves are reported as they are for our models. The sweep's
``heatmap.png`` sits beside ``digits_grid.py``'s. Where scikit-learn's weights stop being
finite, it raises, and the trial ends FAILED with that reason; unlike the lecture's code
(and like ours) it averages the gradients over the batch, so even the largest rate learns.

    hpo run experiments/digits_grid_sklearn.py
"""

from __future__ import annotations

from pathlib import Path

from hpo.sweep.experiment_file import load_experiment

# The grid and the data of digits_grid.py itself, so that the two sweeps cannot drift apart.
_OURS = load_experiment(Path(__file__).with_name("digits_grid.py"))

direction = "maximize"
strategy = "grid"
space = _OURS.space
load_data = _OURS.load_data

EPOCHS, BATCH, HIDDEN = 100, 100, 50


def objective(params, report, data):
    import numpy as np
    from sklearn.metrics import log_loss
    from sklearn.neural_network import MLPClassifier

    X_train, X_val, y_train, y_val = data
    model = MLPClassifier(
        hidden_layer_sizes=(HIDDEN,),
        activation="logistic",
        solver="sgd",
        momentum=0.0,
        learning_rate_init=params["learning_rate"],
        alpha=params["l2_lambda"],
        batch_size=BATCH,
        shuffle=True,
        random_state=0,
    )
    classes = np.unique(y_train)
    for epoch in range(1, EPOCHS + 1):
        model.partial_fit(X_train, y_train, classes=classes)
        report(
            epoch,
            train_loss=model.loss_,
            val_loss=log_loss(y_val, model.predict_proba(X_val), labels=classes),
            val_accuracy=model.score(X_val, y_val),
        )
    report(EPOCHS, train_accuracy=model.score(X_train, y_train))
    return model.score(X_val, y_val)
