"""GP-EI over the number of hidden units, as in the source material's GP-EI study.

One hidden layer of 50 to 1000 units on scikit-learn's digits (70/30 split), trained with
momentum for 100 epochs, minimising the validation cross-entropy. As there: two initial
points, then 20 GP-EI iterations. The sweep's ``gp_posterior.png`` shows the GP's mean, its
95% band, the observations and the expected-improvement curve. Unlike the source, EI is the
real closed form (in log form), and the GP has a noise term: the same width trained twice
scores differently.

    hpo run experiments/hidden_units_gp.py
"""

from __future__ import annotations

from hpo.space import Int

direction = "minimize"
strategy = "gp"
strategy_options = {"n_initial": 2}
n_trials = 22

space = {"hidden_units": Int(50, 1000)}

EPOCHS = 100  # all of them, as in the source


def load_data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)


def objective(params, report, data):
    from models import MLPClassifier

    X_train, X_val, y_train, y_val = data
    last = {}

    def on_epoch(epoch, metrics):
        last.update(metrics)
        report(epoch, **metrics)

    model = MLPClassifier(
        hidden_layer_sizes=(params["hidden_units"],),
        activation="sigmoid",
        solver="momentum",
        momentum=0.9,
        learning_rate_init=0.05,
        batch_size=64,
        max_iter=EPOCHS,
        n_iter_no_change=EPOCHS,
        random_state=0,
        epoch_callback=on_epoch,
    )
    model.fit(X_train, y_train, eval_set=(X_val, y_val))
    report.model(model)  # the sweep's best model: hpo.load_best_model(sweep_id)
    return last["val_loss"]
