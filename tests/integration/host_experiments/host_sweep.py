"""The experiment of the namespace-host tests (test_deployment_hosts.py): trials of ten
steps, 0.25 s apart, long enough for a host to be lost while they run. In a folder of its
own: a submitted sweep ships its experiment's folder, which holds nothing else."""

import time

from hpo.space import Float

direction = "minimize"
strategy = "random"
space = {"x": Float(0.0, 1.0)}


def objective(params, report):
    for step in range(10):
        time.sleep(0.25)
        report(step, loss=params["x"] + 1.0 / (step + 1))
    return params["x"]
