"""The sweep as a person sees it: `hpo ui` on a real store, driven in Debian's Chromium
(headless, through Playwright; nothing downloads a browser). A failing check keeps a
screenshot of its page in test-output/screenshots/ and names it in the failure."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import objectives
import pytest
from conftest import by_trial, child_runs
from ray import cloudpickle
from servers import free_port
from sklearn.datasets import load_iris

import hpo
from hpo.space import Float, Int

cloudpickle.register_pickle_by_value(objectives)

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip(
        "the UI tests need Debian's chromium package (apt-get install chromium)",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.integration
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
ML = "workflowType=machine_learning"  # the UI's model-training view


@pytest.fixture(scope="module")
def store(tmp_path_factory, ray_cluster):
    """A store with a finished sweep whose trials store their models."""
    folder = tmp_path_factory.mktemp("ui-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    X, y = load_iris(return_X_y=True)
    result = hpo.run(
        {"units": Int(1, 16)},
        objectives.with_model,
        strategy=hpo.make_strategy("grid", {"units": Int(4, 7)}, direction="maximize"),
        data=(X / 8.0, y),
        direction="maximize",
        workers=2,
        tracking_uri=uri,
        experiment_name="ui",
        progress=False,
        register_model="ui-best",
    )
    return uri, result


@pytest.fixture(scope="module")
def ui(store):
    """`hpo ui` on the store, as a user starts it; its base URL."""
    uri, _ = store
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "ui", "--tracking-uri", uri, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("hpo ui did not answer within 120 s")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    page.close()


@contextlib.contextmanager
def shown(page, url: str, name: str):
    """Open ``url``; when a check inside fails, keep a screenshot of the page and name it."""
    page.goto(url)
    try:
        yield page
    except BaseException as exc:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        raise AssertionError(f"{exc}\n(screenshot of {url}: {path})") from exc


def test_the_experiment_lists_the_sweep_and_its_trials_when_expanded(store, ui, page):
    _, result = store
    with shown(page, f"{ui}/#/experiments/{result.experiment_id}/runs?{ML}", "experiment"):
        page.get_by_text("ui-grid", exact=True).wait_for(timeout=30_000)  # the parent run
        assert not page.get_by_text("trial-0", exact=True).is_visible()
        # The row's expander: a button without a label in the run-name cell.
        page.locator("button[data-component-id*='runnamecellrenderer']").first.click()
        page.get_by_text("trial-0", exact=True).wait_for(timeout=30_000)
        for number in range(len(result.trials)):
            assert page.get_by_text(f"trial-{number}", exact=True).is_visible()


def test_the_sweeps_overview_shows_its_description_and_best_model(store, ui, page):
    _, result = store
    url = f"{ui}/#/experiments/{result.experiment_id}/runs/{result.sweep_id}?{ML}"
    with shown(page, url, "sweep-overview"):
        # The description, from its note tag.
        page.get_by_text(f"Best value: {result.best_value:.6g}").wait_for(timeout=30_000)
        assert f"(trial {result.best_trial.number})" in page.inner_text("body")
        # The best model, as a logged model of the sweep and as a registered version.
        page.get_by_text("ui-grid-best", exact=True).first.wait_for(timeout=30_000)
        registered = page.get_by_role("link", name="ui-best", exact=True)
        registered.first.wait_for(timeout=30_000)
        assert registered.first.get_attribute("href").endswith("/models/ui-best/versions/1")


def test_a_trials_metrics_page_draws_its_learning_curves(store, ui, page):
    _, result = store
    trial = result.best_trial
    url = f"{ui}/#/experiments/{result.experiment_id}/runs/{trial.run_id}/model-metrics?{ML}"
    with shown(page, url, "trial-metrics"):
        # The charts are drawn one after another: wait for both, accuracy and the objective.
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=30_000
        )
        assert "accuracy" in page.inner_text("body")
        # A drawn curve: plotly's scatter trace with a path.
        assert page.locator(".js-plotly-plot .scatterlayer path").count() >= 1


def test_a_trials_artifacts_page_shows_its_curve_and_model(store, ui, page):
    _, result = store
    trial = result.best_trial
    url = f"{ui}/#/experiments/{result.experiment_id}/runs/{trial.run_id}/artifacts?{ML}"
    with shown(page, url, "trial-artifacts"):
        page.get_by_text("learning_curves.png", exact=True).wait_for(timeout=30_000)
        assert page.get_by_text("model", exact=True).first.is_visible()
        before = page.evaluate("() => [...document.images].map(i => i.naturalWidth)")
        page.get_by_text("learning_curves.png", exact=True).click()
        page.get_by_text("Path:").first.wait_for(timeout=30_000)
        # The curve PNG is drawn in the preview: an image as wide as hpo draws its panels.
        page.wait_for_function(
            "() => [...document.images].some(i => i.complete && i.naturalWidth >= 400)",
            timeout=30_000,
        )
        assert max(before, default=0) < 400  # it was not there before the click


def test_a_running_sweeps_curves_grow_between_two_visits(store, ui, page):
    uri, _ = store
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    outcome: dict = {}

    def sweep():
        outcome["result"] = hpo.run(
            {"x": Float(0.0, 1.0)},
            objectives.ticking,
            n_trials=1,
            workers=1,
            tracking_uri=uri,
            experiment_name="ui-running",
            progress=False,
        )

    thread = threading.Thread(target=sweep)
    thread.start()
    try:
        run = None
        for _ in range(240):  # the trial's run appears once the writer created it
            experiment = client.get_experiment_by_name("ui-running")
            if experiment is not None:
                runs = client.search_runs(
                    [experiment.experiment_id], "tags.`hpo.trial` = '0'", max_results=1
                )
                if runs and client.get_metric_history(runs[0].info.run_id, "loss"):
                    run = runs[0]
                    break
            time.sleep(0.25)
        assert run is not None, "the running trial's run never appeared"
        run_id = run.info.run_id
        history = f"{ui}/ajax-api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss"
        url = f"{ui}/#/experiments/{experiment.experiment_id}/runs/{run_id}/model-metrics?{ML}"
        seen = []
        for visit in range(2):
            with shown(page, url, f"running-{visit}"):
                page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
                seen.append(len(page.request.get(history).json()["metrics"]))
            time.sleep(2.0)
        assert seen[1] > seen[0] > 0, seen
        assert run.info.status == "RUNNING"
    finally:
        thread.join(timeout=120)
    assert outcome["result"].n_complete == 1
    assert by_trial(child_runs(client, outcome["result"].sweep_id))[0].info.status == "FINISHED"
