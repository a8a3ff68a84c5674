"""`LightningCallback`: PyTorch Lightning's validation metrics through ``report``, pruning
that stops the fit, and checkpoints in the trial's run so that a lost trial resumes
mid-training.

>>> callback = LightningCallback(report)                                   # doctest: +SKIP
>>> trainer = lightning.pytorch.Trainer(max_epochs=20, callbacks=[callback])
>>> trainer.fit(model, datamodule, ckpt_path=callback.resume_from())

Each validation epoch's logged metrics (``self.log("val_loss", ...)``) become the trial's
curves at step = epoch; a pruner acts on them, and a pruned trial's fit stops at that
epoch (it ends PRUNED). With ``checkpoint_every=N``, every N-th epoch's Lightning
checkpoint is stored with ``report.checkpoint``; when the trial runs again (its worker
died, or the sweep is resumed), `resume_from` gives the fit that checkpoint's path.
"""

from __future__ import annotations

import numbers
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback


class LightningCallback(Callback):
    """Report validation metrics each epoch; store a checkpoint every ``checkpoint_every``
    epochs (0: never).

    Parameters
    ----------
    report : callable
        The trial's ``report``.
    metrics : list of str, optional
        Only these logged metrics; every scalar one when omitted.
    checkpoint_every : int
        Epochs between checkpoints stored in the trial's run.
    """

    def __init__(
        self,
        report: Callable[..., None],
        metrics: list[str] | None = None,
        checkpoint_every: int = 1,
    ) -> None:
        if not isinstance(checkpoint_every, int) or checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be an int >= 0, got {checkpoint_every!r}")
        self.report, self.metrics, self.checkpoint_every = report, metrics, checkpoint_every
        self._folder = tempfile.TemporaryDirectory(prefix="hpo-lightning-")

    def resume_from(self) -> str | None:
        """The path of the trial's last stored checkpoint when this is a run again of a
        trial that stored one (for ``trainer.fit(..., ckpt_path=...)``); else None."""
        restored = self.report.restore() if hasattr(self.report, "restore") else None
        if restored is None:
            return None
        content, _ = restored
        path = Path(self._folder.name, "restored.ckpt")
        path.write_bytes(content)
        return str(path)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:  # Lightning's dry run of validation, before training
            return
        values = {}
        for name, value in trainer.callback_metrics.items():
            value = value.item() if hasattr(value, "item") and value.numel() == 1 else value
            if isinstance(value, numbers.Real) and (self.metrics is None or name in self.metrics):
                values[name] = float(value)
        if values:
            self.report(trainer.current_epoch, **values)  # raises TrialPruned: the fit stops

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        if self.checkpoint_every and (epoch + 1) % self.checkpoint_every == 0:
            if not hasattr(self.report, "checkpoint"):
                return
            path = Path(self._folder.name, "last.ckpt")
            trainer.save_checkpoint(path)
            self.report.checkpoint(path.read_bytes())
