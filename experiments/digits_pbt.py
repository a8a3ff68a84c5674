"""Population-based training of the MLP on digits: a learning-rate schedule found while
the population trains, instead of one rate for the whole training.

    hpo run experiments/digits_pbt.py
    hpo run experiments/digits_pbt.py --trials 4   # a population of 4

Eight members train 40 epochs of SGD with momentum, in segments of 4 epochs. At the end of
each segment a member in the worst quarter (by validation loss) takes the checkpoint of one
in the best quarter and goes on with its learning rate multiplied by 0.8 or 1.2 (or drawn
afresh, one time in four); the others go on as they were. Each segment is one MLflow run,
tagged with its member, the run it went on from and its steps (``hpo.pbt.*``); the sweep's
run has the population's curves (``pbt_population.png``) and the best trial's schedule of
rates (``pbt_schedule.png``). To train once with that schedule:

    hpo.replay_schedule(sweep_id, space, objective, data=load_data())

The objective checkpoints after every epoch (``report.checkpoint``) and starts from
``report.restore()``: a segment goes on from its parent's state, and ends once it stored
the state of its last epoch.
"""

from __future__ import annotations

from hpo.space import Float

direction = "minimize"
strategy = "pbt"
strategy_options = {"population": 8, "interval": 4, "mutate": ["learning_rate"]}
prune_metric = "val_loss"  # what members are ranked by

space = {
    "learning_rate": Float(1e-3, 0.5, log=True),
    "alpha": Float(1e-6, 1e-2, log=True),  # kept from the member's start: not in mutate
}

EPOCHS = 40


def load_data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.2, random_state=0, stratify=y)


def objective(params, report, data):
    from models import MLPClassifier

    X_train, X_val, y_train, y_val = data
    last = {}

    def on_epoch(epoch, metrics):
        report(epoch, **metrics)
        last.update(metrics)
        report.checkpoint((model.training_state(), dict(last)))

    model = MLPClassifier(
        hidden_layer_sizes=(64,),
        solver="sgd",
        momentum=0.9,
        learning_rate_init=params["learning_rate"],
        alpha=params["alpha"],
        max_iter=EPOCHS,
        n_iter_no_change=EPOCHS,
        random_state=0,
        epoch_callback=on_epoch,
    )
    restored = report.restore()  # (state, epoch) from the segment's parent, else None
    state = None
    if restored is not None:
        state, metrics = restored[0]
        last.update(metrics)
    model.fit(X_train, y_train, eval_set=(X_val, y_val), resume_from=state)
    report.model(model)  # the sweep's best model: hpo.load_best_model(sweep_id)
    return last["val_loss"]
