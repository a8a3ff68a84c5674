"""The cheap trial of `benchmarks/cluster.py`: ten reported steps, the last with the time the
trial ended (``t_end``), from which the tracking lag is measured."""

import time

from hpo.space import Float

direction = "minimize"
strategy = "random"
space = {"x": Float(0.0, 1.0)}


def objective(params, report):
    for step in range(9):
        report(step, loss=params["x"] / (step + 1))
    report(9, loss=params["x"] / 10, t_end=time.time())
    return params["x"]
