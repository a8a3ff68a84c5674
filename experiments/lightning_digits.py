"""A small PyTorch network on scikit-learn's digits, trained with PyTorch Lightning.

`hpo.integrations.lightning.LightningCallback` reports each validation epoch's loss and
accuracy, lets ASHA stop a fit at its rungs, and stores a Lightning checkpoint in the
trial's run every epoch: a trial whose worker dies goes on from its last epoch.

    pip install "hpo[lightning]"
    hpo run experiments/lightning_digits.py
"""

from __future__ import annotations

from hpo.space import Choice, Float, Int

direction = "maximize"
strategy = "tpe"
n_trials = 20
pruner = "asha:min_resource=2,reduction_factor=2"

space = {
    "hidden_units": Int(16, 256, log=True),
    "learning_rate": Float(1e-4, 1e-1, log=True),
    "batch_size": Choice([32, 64, 128]),
}

EPOCHS = 8


def load_data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def make_module(hidden_units, learning_rate):
    import lightning.pytorch as pl
    import torch
    from torch import nn

    class Digits(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(64, hidden_units), nn.ReLU(), nn.Linear(hidden_units, 10)
            )

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            logits = self(x)
            self.log("val_loss", nn.functional.cross_entropy(logits, y))
            self.log("val_accuracy", (logits.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=learning_rate)

    return Digits()


def objective(params, report, data):
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from hpo.integrations.lightning import LightningCallback

    X_train, X_val, y_train, y_val = data
    torch.manual_seed(0)

    def loader(X, y, shuffle):
        dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
        return DataLoader(dataset, batch_size=params["batch_size"], shuffle=shuffle)

    module = make_module(params["hidden_units"], params["learning_rate"])
    callback = LightningCallback(report)
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        callbacks=[callback],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(
        module,
        loader(X_train, y_train, True),
        loader(X_val, y_val, False),
        ckpt_path=callback.resume_from(),
    )
    return float(trainer.callback_metrics["val_accuracy"])
