"""`hpo.run` in a real Jupyter kernel (nbclient, ipykernel): the shipped quickstart notebook
runs a sweep, loads its best model and plots its trials; the progress display updates in
place; an interrupted kernel ends the sweep cleanly."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import nbformat
import pytest
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

pytestmark = pytest.mark.integration

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"


def execute(nb, folder: Path, hpo_env) -> None:
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
        env=hpo_env,  # the venv's tools, no inherited tracking URI
    ).execute()


def texts(cell) -> str:
    """Everything a cell printed or displayed, as text or HTML."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        else:
            data = output.get("data", {})
            parts.append(data.get("text/html", "") + data.get("text/plain", ""))
    return "\n".join(parts)


def test_the_quickstart_notebook_runs_a_sweep_and_loads_its_best_model(tmp_path, hpo_env):
    shipped = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in shipped.cells if c.cell_type == "code")
    shutil.copy(NOTEBOOK, tmp_path / "quickstart.ipynb")
    nb = nbformat.read(tmp_path / "quickstart.ipynb", as_version=4)
    execute(nb, tmp_path, hpo_env)
    code = [c for c in nb.cells if c.cell_type == "code"]
    sweep = code[2]
    # One progress output, updated in place to its end (not a line per update).
    progress = [
        o for o in sweep.outputs if "hpo-progress" in o.get("data", {}).get("text/html", "")
    ]
    assert len(progress) == 1 and "6/6 trials" in progress[0].data["text/html"]
    assert not any("trial/s" in o.get("text", "") for o in sweep.outputs)
    # The sweep's links, clickable, and its summary.
    shown = texts(sweep)
    assert '<a href="http://127.0.0.1:5000/#/experiments/' in shown
    assert "6 trials, 6 complete" in shown
    store = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = store.get_experiment_by_name("notebook-quickstart")
    [parent] = store.search_runs([experiment.experiment_id], "tags.`hpo.sweep` = 'true'")
    assert f"/runs/{parent.info.run_id}" in shown
    # The best model, loaded back and scored; the trials plotted.
    accuracy = float(texts(code[3]).split("validation accuracy:")[1])
    assert accuracy == pytest.approx(float(parent.data.tags["hpo.best_value"]), abs=1e-3)
    assert any("image/png" in o.get("data", {}) for o in code[4].outputs)


INTERRUPTED = textwrap.dedent(
    """
    import os, signal, threading, time
    import hpo
    from hpo.space import Float

    STARTED = os.path.abspath("started")  # written by the first trial that runs

    def objective(params, report):
        open(STARTED, "a").close()
        for step in range(10):
            report(step, loss=params["x"])
            time.sleep(0.2)
        return params["x"]

    def interrupt_when_running():
        while not os.path.exists(STARTED):
            time.sleep(0.2)
        time.sleep(3.0)
        # What Jupyter's "interrupt the kernel" does to a local kernel: SIGINT.
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_running, daemon=True).start()
    result = hpo.run({"x": Float(0.0, 1.0)}, objective, n_trials=200, workers=2,
                     tracking_uri="sqlite:///mlflow.db", experiment_name="interrupted")
    print("interrupted:", result.interrupted)
    print(result.summary())
    """
)


def test_an_interrupted_kernel_ends_the_sweep_cleanly(tmp_path, hpo_env):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(INTERRUPTED)]
    execute(nb, tmp_path, hpo_env)
    shown = texts(nb.cells[0])
    assert "interrupted: True" in shown and "(interrupted)" in shown
    store = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = store.get_experiment_by_name("interrupted")
    [parent] = store.search_runs([experiment.experiment_id], "tags.`hpo.sweep` = 'true'")
    assert parent.info.status == "KILLED"
    runs = store.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert 0 < len(runs) < 200
    assert all(r.info.status != "RUNNING" for r in runs)  # none left behind
