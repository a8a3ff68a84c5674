"""The source material's MNIST networks, on an MNIST file you supply (nothing is downloaded).

Put MNIST as distributed with Keras (``mnist.npz``: arrays ``x_train``, ``y_train``,
``x_test``, ``y_test``; 28x28 images of 0..255) anywhere and name it in ``HPO_MNIST``:

    HPO_MNIST=~/data/mnist.npz hpo run experiments/mnist_mlp.py

The space holds both of the source's networks, with ReLU hidden layers and a softmax output:
- 784-500-300-10, SGD with Nesterov momentum 0.99, batch 128, step 0.01, 10 epochs: 98.37%
  validation accuracy reported;
- 784-100-10 (the textbook's), SGD with momentum 0.9: about 97.2% reported (step 0.001,
  batch 8192, early stopping after 135 epochs; almost 98% with an L2 penalty).
and the settings between them. Every trial trains 10 epochs on the first 50,000 training
images and is scored on the other 10,000 (validation accuracy, maximised); the test set's
accuracy is reported at the end. Inputs are scaled to [0, 1]; float32 for speed.
"""

from __future__ import annotations

import os

from hpo.space import Choice, Float, Int

direction = "maximize"
strategy = "tpe"
n_trials = 20

NETWORKS = {"500-300": (500, 300), "100": (100,)}

space = {
    "network": Choice(list(NETWORKS)),
    "learning_rate": Float(1e-3, 1e-1, log=True),
    "momentum": Choice([0.9, 0.99]),
    "nesterov": Choice([True, False]),
    "batch_size": Int(32, 8192, log=True),
    "l2_alpha": Choice([0.0, 1e-5, 1e-4, 1e-3]),
}

EPOCHS, VALIDATION = 10, 10_000
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def load_data():
    """The four arrays of the file named by HPO_MNIST, as flat float32 images in [0, 1]."""
    import numpy as np

    where = os.environ.get("HPO_MNIST")
    if not where:
        raise FileNotFoundError(
            "MNIST is not downloaded by hpo: put mnist.npz (as distributed with Keras) on this "
            "machine and name it in HPO_MNIST, e.g. HPO_MNIST=~/data/mnist.npz"
        )
    path = os.path.expanduser(where)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"HPO_MNIST names {where!r}, which is not a file")
    with np.load(path) as npz:
        missing = [name for name in ARRAYS if name not in npz.files]
        if missing:
            raise ValueError(
                f"{where}: an MNIST file holds the arrays {', '.join(ARRAYS)}; "
                f"missing {', '.join(missing)}"
            )
        x_train, y_train, x_test, y_test = (npz[name] for name in ARRAYS)
    if x_train.ndim not in (2, 3) or len(x_train) < 2:
        raise ValueError(f"{where}: x_train must hold 28x28 images, got shape {x_train.shape}")

    def flat(images):
        return images.reshape(len(images), -1).astype(np.float32) / 255.0

    held_out = min(VALIDATION, len(x_train) // 6)  # 10,000 of MNIST's 60,000
    return (
        flat(x_train[:-held_out]),
        flat(x_train[-held_out:]),
        flat(x_test),
        y_train[:-held_out],
        y_train[-held_out:],
        y_test,
    )


def objective(params, report, data):
    from models import MLPClassifier

    X_train, X_val, X_test, y_train, y_val, y_test = data
    model = MLPClassifier(
        hidden_layer_sizes=NETWORKS[params["network"]],
        activation="relu",
        solver="sgd",
        learning_rate_init=params["learning_rate"],
        momentum=params["momentum"],
        nesterovs_momentum=params["nesterov"],
        batch_size=params["batch_size"],
        alpha=params["l2_alpha"],
        max_iter=EPOCHS,
        n_iter_no_change=EPOCHS,
        dtype="float32",
        random_state=0,
        epoch_callback=lambda epoch, metrics: report(epoch, **metrics),
    )
    model.fit(X_train, y_train, eval_set=(X_val, y_val))
    report(model.n_iter_, test_accuracy=model.score(X_test, y_test))
    return model.score(X_val, y_val)
