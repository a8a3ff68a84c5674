"""The source material's regression study, on scikit-learn's diabetes data.

The source fits Boston housing (inputs and target min-max scaled, one hidden layer, a sigmoid
output, Levenberg-Marquardt for 30 epochs) and reports a validation RMSLE of about 0.18.
Boston is no longer in scikit-learn; its bundled diabetes data (442 patients, 10 inputs,
disease progression after a year) stands in. As there, inputs and target are min-max scaled
(by the training split's range only) and the network has one hidden layer; here
`models.MLPRegressor` trains it with Adam (the models have no Levenberg-Marquardt) and a
linear output (a sigmoid output would need a cross-entropy-style loss to learn well). TPE
tunes the hidden units, activation, learning rate and L2 penalty, minimising the validation
RMSLE; R² is reported beside it.

    hpo run experiments/diabetes_regression.py
"""

from __future__ import annotations

from hpo.space import Choice, Float, Int

direction = "minimize"
strategy = "tpe"
n_trials = 40

space = {
    "hidden_units": Int(2, 64, log=True),
    "activation": Choice(["sigmoid", "tanh", "relu"]),
    "learning_rate": Float(1e-4, 1e-1, log=True),
    "l2_alpha": Float(1e-6, 1.0, log=True),
}

EPOCHS, BATCH = 200, 32


def load_data():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    X, y = load_diabetes(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    inputs = MinMaxScaler().fit(X_train)
    low, high = y_train.min(), y_train.max()
    return (
        inputs.transform(X_train),
        inputs.transform(X_val),
        (y_train - low) / (high - low),
        (y_val - low) / (high - low),
    )


def rmsle(predicted, target):
    """Root mean squared log error; predictions below 0 (outside the scaled target's range)
    count as 0, where the logarithm is defined."""
    import numpy as np

    return float(np.sqrt(np.mean((np.log1p(np.clip(predicted, 0, None)) - np.log1p(target)) ** 2)))


def objective(params, report, data):
    from sklearn.metrics import r2_score

    from models import MLPRegressor

    X_train, X_val, y_train, y_val = data
    model = MLPRegressor(
        hidden_layer_sizes=(params["hidden_units"],),
        activation=params["activation"],
        solver="adam",
        learning_rate_init=params["learning_rate"],
        alpha=params["l2_alpha"],
        batch_size=BATCH,
        max_iter=EPOCHS,
        n_iter_no_change=EPOCHS,  # train every epoch: the curves show any overfitting
        random_state=0,
        epoch_callback=lambda epoch, metrics: report(epoch, **metrics),
    )
    model.fit(X_train, y_train, eval_set=(X_val, y_val))
    predicted = model.predict(X_val)
    report(model.n_iter_, val_rmsle=rmsle(predicted, y_val), r2=r2_score(y_val, predicted))
    report.model(model)  # the sweep's best model: hpo.load_best_model(sweep_id)
    return rmsle(predicted, y_val)
