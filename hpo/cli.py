"""The ``hpo`` command: run a sweep from an experiment file, show sweeps, open the MLflow UI."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.sweep.config import DEFAULT_MAX_RETRIES
from hpo.tracking.access import refusal, without_credentials
from hpo.tracking.outage import OUTAGE_LIMIT_SECONDS, TrackingRefused, TrackingUnavailable
from hpo.tracking.schema import SweepTag
from hpo.tracking.store import DEFAULT_TRACKING_URI, artifact_root, resolve_tracking_uri

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class UsageError(Exception):
    """Bad input from the command line or the experiment file: printed, no traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpo", description="Hyperparameter sweeps on Ray, tracked in MLflow."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    tracking = argparse.ArgumentParser(add_help=False)
    tracking.add_argument(
        "--tracking-uri",
        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})",
    )

    # What running a sweep takes, whether it starts (run) or goes on (resume).
    running = argparse.ArgumentParser(add_help=False)
    running.add_argument(
        "--workers",
        type=int,
        help="parallel trials (default: as many as the cluster's resources fit)",
    )
    running.add_argument(
        "--address", help="address of an existing Ray cluster (default: start a local one)"
    )
    running.add_argument(
        "--timeout", type=float, help="seconds for this run of the sweep (default: no limit)"
    )
    running.add_argument(
        "--tracking-patience",
        type=float,
        default=OUTAGE_LIMIT_SECONDS,
        help="seconds an unreachable tracking server is waited for, results buffered "
        f"(default: {OUTAGE_LIMIT_SECONDS:g}); then the sweep stops and can be resumed",
    )
    running.add_argument("--no-progress", action="store_true", help="no progress bar")

    # The tracking server as the cluster reaches it, when not as this machine does (through
    # an SSH tunnel the laptop's http://127.0.0.1:5000 is the deployment's http://mlflow:5000).
    cluster_tracking = argparse.ArgumentParser(add_help=False)
    cluster_tracking.add_argument(
        "--cluster-tracking-uri",
        metavar="URI",
        help="the tracking server's address as the cluster reaches it (default: --tracking-uri's)",
    )

    run = sub.add_parser(
        "run", parents=[tracking, running], help="run a sweep from an experiment file"
    )
    run.add_argument("file", help="experiment file (a .py module defining space and objective)")
    run.add_argument(
        "--strategy",
        help="grid, random, gp, tpe, bohb (tpe with the hyperband pruner), pbt "
        "(population-based training; --trials is its population), hyperopt-tpe or "
        "optuna:NAME (default: the file's, else random)",
    )
    run.add_argument(
        "--trials",
        type=int,
        help="budget (default: the file's, else the whole grid for grid search, 20 otherwise)",
    )
    run.add_argument("--seed", type=int, help="strategy seed (default: drawn and recorded)")
    run.add_argument("--experiment-name", help="MLflow experiment (default: the file's name)")
    run.add_argument(
        "--max-retries",
        type=int,
        default=DEFAULT_MAX_RETRIES,
        help=f"re-runs of a trial whose worker process died (default: {DEFAULT_MAX_RETRIES})",
    )
    run.add_argument(
        "--trial-timeout",
        type=float,
        help="seconds for one trial; then it ends FAILED with the reason",
    )
    run.add_argument(
        "--pruner",
        metavar="median|asha|hyperband|none[:OPTIONS]",
        help="stop unpromising trials on their curves, e.g. hyperband or "
        "asha:resource=seconds,reduction_factor=4 (default: the file's, else none)",
    )
    run.add_argument(
        "--prune-metric",
        help="reported metric the pruner watches (default: the file's, else the first reported)",
    )
    run.add_argument(
        "--register-model",
        metavar="NAME",
        help="register the best trial's model (report.model) in MLflow's Model Registry "
        "as a new version of NAME (default: the file's, else none)",
    )
    run.add_argument(
        "--stop-at",
        type=float,
        metavar="VALUE",
        help="start no new trial once the best value reaches VALUE (default: the file's)",
    )
    run.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="start no new trial once N trials in a row did not improve on the best "
        "(default: the file's); running trials finish",
    )
    run.add_argument(
        "--warm-start",
        nargs="+",
        metavar="SWEEP_ID",
        help="learn from the finished trials of these earlier sweeps in the store before the "
        "first ask (not run again, not counted in --trials; default: the file's)",
    )
    run.add_argument(
        "--enqueue",
        metavar="FILE.json",
        help="run these configurations first: a JSON list of dicts shaped like params "
        "(parameters left out are drawn at random; default: the file's enqueue, else none)",
    )
    run.add_argument(
        "--trial-resources",
        metavar="cpu=N,gpu=G,...",
        help="what each trial asks of the cluster: cpu, gpu (a fraction shares a device), "
        "memory (e.g. 8GB), custom.NAME (default: the file's, else cpu=1); BLAS and OpenMP "
        "threads follow cpu",
    )
    run.add_argument(
        "--max-trials-per-worker",
        type=int,
        metavar="N",
        help="replace a worker process after N trials, so memory a framework leaks "
        "across trials cannot grow without bound (default: the file's, else never)",
    )
    run.add_argument(
        "--repeats",
        type=int,
        help="evaluate each configuration with seeds 0..K-1 in params['seed']; "
        "the value is the mean (default: the file's, else 1)",
    )

    resume = sub.add_parser(
        "resume",
        parents=[tracking, running, cluster_tracking],
        help="continue a sweep whose driver stopped (killed, interrupted, timed out)",
    )
    resume.add_argument("sweep_id", help="parent run id of the sweep")
    resume.add_argument(
        "--file", help="the sweep's experiment file (default: the path the sweep recorded)"
    )
    resume.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="a larger budget (default: the sweep's); how a sweep its stopping rule ended goes on",
    )
    resume.add_argument(
        "--submit",
        action="store_true",
        help="go on with it on the cluster, as a Ray job (--address: the dashboard's, "
        "http://HEAD:8265; --file: the experiment file here)",
    )

    replay = sub.add_parser(
        "replay",
        parents=[tracking],
        help="train once with the schedule of parameters population-based training found "
        "(strategy pbt), as a sweep of its own",
    )
    replay.add_argument("sweep_id", help="parent run id of the pbt sweep")
    replay.add_argument(
        "--file", help="the sweep's experiment file (default: the path the sweep recorded)"
    )
    replay.add_argument(
        "--trial", type=int, help="the trial whose lineage to replay (default: the best)"
    )
    replay.add_argument(
        "--address", help="address of an existing Ray cluster (default: start a local one)"
    )
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")

    show = sub.add_parser("show", parents=[tracking], help="list sweeps, or show one")
    show.add_argument("sweep_id", nargs="?", help="parent run id of a sweep (default: list all)")
    show.add_argument("--top", type=int, default=10, help="how many best trials to list")
    show.add_argument(
        "--csv",
        action="store_true",
        help="write the sweep's trials as CSV (one row per trial: state, value, duration, "
        "params, last metrics) instead of the summary",
    )
    show.add_argument(
        "--open",
        metavar="FIGURE",
        help="fetch one of the sweep's figures (e.g. optimization_history.png) from the store "
        "into the working folder and open it with the desktop's viewer",
    )

    ui = sub.add_parser("ui", parents=[tracking], help="open the MLflow UI on the tracking store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    ui.add_argument(
        "--allowed-hosts",
        help="Host headers the UI answers (comma-separated, wildcards allowed; default: "
        "MLflow's, localhost and private addresses); any other gets 403",
    )

    # Submitted sweeps: the driver runs on the cluster as a Ray job (hpo.execution.jobs).
    dashboard = argparse.ArgumentParser(add_help=False)
    dashboard.add_argument(
        "--address",
        default=os.environ.get("RAY_API_SERVER_ADDRESS"),
        help="the Ray dashboard's address, http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS)",
    )
    submit = sub.add_parser(
        "submit",
        parents=[tracking, dashboard, cluster_tracking],
        help="run a sweep's driver on a Ray cluster as a job; returns at once",
        description="Any option of `hpo run` may follow; it is passed to the sweep's driver.",
    )
    submit.add_argument("file", help="experiment file (a .py module defining space and objective)")
    submit.add_argument(
        "--working-dir",
        help="folder shipped to the cluster with the file (default: the file's folder)",
    )
    status = sub.add_parser(
        "status",
        parents=[dashboard, tracking],
        help="submitted sweeps, or one with its progress (read from --tracking-uri, else "
        "from the store the sweep was submitted with)",
    )
    status.add_argument("job", nargs="?", help="the job id `hpo submit` printed")
    logs = sub.add_parser("logs", parents=[dashboard], help="a submitted sweep's output")
    logs.add_argument("job")
    logs.add_argument("--follow", action="store_true", help="keep printing until it ends")
    stop = sub.add_parser(
        "stop", parents=[dashboard], help="end a submitted sweep as Ctrl-C does (resumable)"
    )
    stop.add_argument("job")
    return parser


# The MLflow UI's model-training view (runs, charts, models) of an experiment: its sidebar
# otherwise opens on the GenAI view whatever the experiment's kind.
EXPERIMENT_PAGE = "/#/experiments/{}/runs?workflowType=machine_learning"


def _ui_hint(uri: str, experiment_id: str) -> str:
    page = EXPERIMENT_PAGE.format(experiment_id)
    if uri.startswith(("http://", "https://")):
        return f"browse it at {without_credentials(uri).rstrip('/')}{page}"
    return f"browse it with: hpo ui{_uri_flag(uri)}   (then open http://127.0.0.1:5000{page})"


def _uri_flag(uri: str) -> str:
    """The ``--tracking-uri`` option a later command needs to find this store again."""
    return "" if uri == DEFAULT_TRACKING_URI else f" --tracking-uri {without_credentials(uri)}"


def cmd_run(args: argparse.Namespace) -> int:
    from hpo.execution.worker import objective_arity
    from hpo.sweep.experiment_file import load_experiment
    from hpo.sweep.start import start

    try:
        exp = load_experiment(args.file)
        strategy = args.strategy or exp.config.strategy
        # The file's options belong to the file's strategy, not to one chosen on the command line.
        options = exp.config.strategy_options if strategy == exp.config.strategy else {}
        if strategy == "pbt" and args.trials is not None:  # --trials is pbt's population
            options = {**options, "population": args.trials}
        config = exp.config.replace(
            strategy=strategy,
            strategy_options=options,
            seed=args.seed,
            n_trials=args.trials,
            workers=args.workers,
            tracking_uri=args.tracking_uri,
            experiment_name=args.experiment_name,
            address=args.address,
            max_retries=args.max_retries,
            timeout=args.timeout,
            trial_timeout=args.trial_timeout,
            progress=not args.no_progress,
            pruner=args.pruner,
            prune_metric=args.prune_metric,
            repeats=args.repeats,
            sweep_tags=_run_tags(args.file),
            tracking_patience=args.tracking_patience,
            register_model=args.register_model,
            enqueue=_enqueued(args.enqueue) if args.enqueue else None,
            stop_at=args.stop_at,
            patience=args.patience,
            warm_start=args.warm_start,
            resources=args.trial_resources,
            max_trials_per_worker=args.max_trials_per_worker,
        )
        arity = objective_arity(exp.objective)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    if arity == 3 and exp.load_data is None:
        raise UsageError(
            f"{args.file}: objective takes (params, report, data) but the file "
            "defines no load_data()"
        )
    if arity == 2 and exp.load_data is not None:
        raise UsageError(
            f"{args.file}: the file defines load_data() but objective takes only "
            "(params, report); add a data parameter"
        )
    data = _load_data(exp)
    return _sweep(
        lambda: start(
            config,
            space=exp.space,
            objective=exp.objective,
            data=data,
            constraints=exp.constraints,
        ),
        config.tracking_uri,
    )


def _enqueued(path: str) -> Any:
    """The configurations of an ``--enqueue`` file."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"--enqueue: cannot read {path!r}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"--enqueue: {path!r} is not JSON ({exc})") from exc


def _load_data(exp: Any) -> Any:
    """The experiment's data, before anything is created: a file it cannot find or read
    (its message says where to put it) is one line, not a traceback."""
    if exp.load_data is None:
        return None
    try:
        return exp.load_data()
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(f"{exp.path}: {exc}") from exc


def _sweep(start: Callable[[], Any], uri: str) -> int:
    """Run (or resume) a sweep; print its outcome, or the error that stopped it."""
    from hpo.execution.cluster import ClusterConnectionError
    from hpo.execution.pool import WorkerStartError

    try:
        result = start()
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    except (WorkerStartError, ClusterConnectionError, TrackingUnavailable, TrackingRefused) as exc:
        print(f"hpo: error: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    print(f"\nrecorded in {without_credentials(uri)}; details: hpo show {result.sweep_id}")
    if result.figures:
        print(
            f"figures in the sweep's run: {', '.join(result.figures)}; open one with: "
            f"hpo show {result.sweep_id} --open {result.figures[0]}{_uri_flag(uri)}"
        )
    if result.interrupted or result.timed_out:
        print(f"to go on with it: hpo resume {result.sweep_id}{_uri_flag(uri)}")
    print(_ui_hint(uri, result.experiment_id))
    return EXIT_INTERRUPTED if result.interrupted else 0


def cmd_resume(args: argparse.Namespace) -> int:
    import hpo
    from hpo.sweep.experiment_file import load_experiment

    uri = resolve_tracking_uri(args.tracking_uri)
    path = args.file or _recorded_file(uri, args.sweep_id)
    try:
        exp = load_experiment(path)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    if args.submit:
        return _resume_submitted(args, path, uri)
    if args.cluster_tracking_uri:
        raise UsageError("--cluster-tracking-uri is for a sweep resumed with --submit")
    data = _load_data(exp)
    return _sweep(
        lambda: hpo.resume(
            args.sweep_id,
            exp.space,
            exp.objective,
            tracking_uri=uri,
            data=data,
            address=args.address,
            workers=args.workers,
            timeout=args.timeout,
            progress=not args.no_progress,
            tracking_patience=args.tracking_patience,
            n_trials=args.trials,
            constraints=exp.constraints,
        ),
        uri,
    )


def cmd_replay(args: argparse.Namespace) -> int:
    import hpo
    from hpo.sweep.experiment_file import load_experiment

    uri = resolve_tracking_uri(args.tracking_uri)
    try:
        exp = load_experiment(args.file or _recorded_file(uri, args.sweep_id))
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    data = _load_data(exp)
    return _sweep(
        lambda: hpo.replay_schedule(
            args.sweep_id,
            exp.space,
            exp.objective,
            trial=args.trial,
            tracking_uri=uri,
            data=data,
            address=args.address,
            progress=not args.no_progress,
        ),
        uri,
    )


def _resume_submitted(args: argparse.Namespace, path: str, uri: str) -> int:
    from hpo.execution.jobs import FILE, SubmissionError, submit

    address = _dashboard(args.address or os.environ.get("RAY_API_SERVER_ADDRESS"))
    options = {"--trials": args.trials, "--workers": args.workers, "--timeout": args.timeout}
    passed = [str(v) for flag, value in options.items() if value is not None for v in (flag, value)]
    try:
        job = submit(
            address,
            path,
            passed,
            tracking_uri=uri,
            cluster_tracking_uri=args.cluster_tracking_uri,
            command=("resume", args.sweep_id, "--file", FILE),
        )
    except (FileNotFoundError, ValueError, SubmissionError) as exc:
        raise UsageError(str(exc)) from exc
    flag = f" --address {address}"
    print(f"submitted job {job} to {address}: it goes on with sweep {args.sweep_id}")
    print(f"follow it: hpo status {job}{flag}   hpo logs {job} --follow{flag}")
    return 0


def _recorded_file(uri: str, sweep_id: str) -> str:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        tags = MlflowClient(uri).get_run(sweep_id).data.tags
    except MlflowException as exc:
        denied = refusal(exc, uri, f"the experiment of sweep {sweep_id}")
        if denied is not None:
            raise denied from None
        where = without_credentials(uri)
        raise UsageError(f"no sweep {sweep_id!r} in {where}: {exc.message}") from exc
    if SweepTag.EXPERIMENT_FILE not in tags:
        raise UsageError(
            f"sweep {sweep_id!r} was not started from an experiment file; pass --file, "
            "or resume it from Python with hpo.resume(...)"
        )
    return tags[SweepTag.EXPERIMENT_FILE]


def cmd_show(args: argparse.Namespace) -> int:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from hpo.report.show import list_sweeps, show_sweep

    uri = resolve_tracking_uri(args.tracking_uri)
    client = MlflowClient(uri)
    if args.sweep_id is None:
        if args.csv:
            raise UsageError("--csv needs a SWEEP_ID: it writes one sweep's trials")
        print(list_sweeps(client))
        return 0
    try:
        if args.open:
            return _open_figure(client, args.sweep_id, args.open)
        if args.csv:
            from hpo.tracking.reader import load_sweep

            frame = load_sweep(args.sweep_id, tracking_uri=uri).to_dataframe()
            sys.stdout.write(frame.to_csv(index=False))
        else:
            print(show_sweep(client, args.sweep_id, top=args.top))
    except MlflowException as exc:
        denied = refusal(exc, uri, f"the experiment of sweep {args.sweep_id}")
        if denied is not None:
            raise denied from None
        raise UsageError(
            f"no sweep {args.sweep_id!r} in this tracking store: {exc.message}"
        ) from exc
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return 0


def _open_figure(client: Any, sweep_id: str, name: str) -> int:
    import webbrowser

    figures = sorted(a.path for a in client.list_artifacts(sweep_id) if a.path.endswith(".png"))
    if name not in figures:
        raise UsageError(
            f"sweep {sweep_id} has no figure {name!r}; its figures: {', '.join(figures) or 'none'}"
        )
    path = Path(client.download_artifacts(sweep_id, name, ".")).resolve()
    print(f"{name} of sweep {sweep_id}: {path}")
    webbrowser.open(path.as_uri())  # nothing happens where there is no desktop
    return 0


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def exposure_warning(host: str, port: int, uri: str) -> str | None:
    """What binding the UI to ``host`` opens up, or None on loopback."""
    if host in LOOPBACK:
        return None
    who = "every machine that can reach this one" if host in ("0.0.0.0", "::") else host
    return (
        f"hpo ui: warning: listening on {host}:{port}: {who} can now read and change every "
        f"run in {uri} (MLflow's UI has no login); requests must still name an allowed host "
        "(--allowed-hosts; MLflow's default: localhost and private addresses)"
    )


def ui_command(uri: str, host: str, port: int, allowed_hosts: str | None = None) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
    ]
    root = artifact_root(uri)
    if root is not None:
        command += ["--default-artifact-root", root]
    if allowed_hosts is not None:  # else MLflow's default: localhost and private addresses
        command += ["--allowed-hosts", allowed_hosts]
    return command


def ui_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The UI server's environment: MLflow's server jobs off unless the user turned them on.
    They serve MLflow's GenAI features (scorers, prompt optimisation), which no sweep uses,
    and cost seven more processes, each importing MLflow, at every start."""
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **environ}


def cmd_ui(args: argparse.Namespace) -> int:
    uri = resolve_tracking_uri(args.tracking_uri)
    if uri.startswith(("http://", "https://")):
        print(f"{without_credentials(uri)} is a tracking server: its UI is at that address already")
        return 0
    warning = exposure_warning(args.host, args.port, uri)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    base = f"http://{args.host}:{args.port}"
    print(f"MLflow UI for {uri} at {base} (Ctrl-C to stop)", flush=True)
    for line in _experiment_links(uri, base):
        print(line, flush=True)
    # A terminal that closes (SIGHUP) stops the server as Ctrl-C and SIGTERM do.
    signal.signal(signal.SIGHUP, _interrupt)
    # In a session of its own, so that the server and the workers it starts can be stopped
    # together, whichever signal reaches hpo.
    server = subprocess.Popen(
        ui_command(uri, args.host, args.port, args.allowed_hosts),
        env=ui_environment(os.environ),
        start_new_session=True,
    )
    try:
        return server.wait()
    except KeyboardInterrupt:
        _stop_session(server)
        return 0


def _experiment_links(uri: str, base: str) -> list[str]:
    """A line per experiment of the store that holds sweeps: its page in the model-training
    view, and its latest sweep's."""
    from mlflow.tracking import MlflowClient

    from hpo.tracking.reader import recent_sweeps

    client = MlflowClient(uri)
    lines = []
    for experiment in client.search_experiments():
        [latest] = recent_sweeps(client, [experiment.experiment_id], most=1) or [None]
        if latest is None:
            continue
        page = EXPERIMENT_PAGE.format(experiment.experiment_id)
        run = f"/#/experiments/{experiment.experiment_id}/runs/{latest.info.run_id}"
        lines.append(
            f"  {experiment.name}: {base}{page}\n    latest sweep "
            f"{latest.info.run_name}: {base}{run}"
        )
    return lines or ["  no sweep in this store yet: `hpo run FILE` makes one"]


def _stop_session(server: subprocess.Popen) -> None:
    """Stop the UI server and every process it started (its session)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        try:
            server.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        with contextlib.suppress(ProcessLookupError):  # workers its end left behind
            os.killpg(server.pid, signal.SIGKILL)
        return


def _run_tags(file: str) -> dict[str, str]:
    from hpo.execution.jobs import job_id_here

    tags = {SweepTag.EXPERIMENT_FILE: str(Path(file).resolve())}
    job = job_id_here()
    if job is not None:  # a submitted sweep's driver, on the cluster
        tags[SweepTag.JOB_ID] = job
    return tags


# -- submitted sweeps ----------------------------------------------------------------------
def _dashboard(address: str | None) -> str:
    """The Ray dashboard's address submitted sweeps go through; one must be given."""
    if not address:
        raise UsageError("give the Ray dashboard's address: --address http://HEAD:8265")
    return address


def _jobs(args: argparse.Namespace) -> Any:
    from hpo.execution.jobs import SubmissionError, client

    try:
        return client(_dashboard(args.address))
    except SubmissionError as exc:
        raise UsageError(str(exc)) from None


def cmd_submit(args: argparse.Namespace) -> int:
    from hpo.execution.jobs import SubmissionError, find_sweep, submit
    from hpo.sweep.experiment_file import load_experiment

    uri = resolve_tracking_uri(args.tracking_uri)
    # The options for the driver are checked here, as `hpo run` would check them there.
    run_args = list(args.passed_on)
    try:
        _parser().parse_args(["run", args.file, *run_args])
    except SystemExit:
        return EXIT_USAGE
    try:
        load_experiment(args.file)
        job = submit(
            _dashboard(args.address),
            args.file,
            run_args,
            tracking_uri=uri,
            cluster_tracking_uri=args.cluster_tracking_uri,
            working_dir=args.working_dir,
        )
    except (FileNotFoundError, ValueError, TypeError, SubmissionError) as exc:
        raise UsageError(str(exc)) from exc
    print(f"submitted job {job} to {args.address}")
    sweep = find_sweep(uri, job, seconds=SWEEP_WAIT_SECONDS)
    if sweep is not None:
        page = f"/#/experiments/{sweep.info.experiment_id}/runs/{sweep.info.run_id}"
        print(f"sweep {sweep.info.run_id}: {without_credentials(uri).rstrip('/')}{page}")
    else:
        print("its sweep id shows in `hpo status` once the driver has started on the cluster")
    flag = f" --address {args.address}"
    print(f"follow it: hpo status {job}{flag}   hpo logs {job} --follow{flag}")
    print(f"stop it (resumable): hpo stop {job}{flag}")
    return 0


SWEEP_WAIT_SECONDS = 20.0  # for the driver to make the sweep's run, before `submit` returns


def cmd_status(args: argparse.Namespace) -> int:
    from hpo.execution.jobs import find_sweep

    jobs = _jobs(args)
    if args.job is None:
        rows = [
            (j.submission_id, str(j.status.value), (j.metadata or {}).get("file", ""))
            for j in jobs.list_jobs()
            if (j.metadata or {}).get("hpo") == "sweep"
        ]
        for row in rows or [("no submitted sweeps", "", "")]:
            print("  ".join(row).rstrip())
        return 0
    try:
        info = jobs.get_job_info(args.job)
    except Exception as exc:  # noqa: BLE001 - Ray says "Job ... does not exist" in many ways
        raise UsageError(f"no job {args.job!r} at {args.address}: {exc}") from None
    state = str(info.status.value)
    print(f"job {args.job}: {state}" + (f" ({info.message})" if info.message else ""))
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    uri = uri or (info.metadata or {}).get("tracking_uri")
    sweep = find_sweep(uri, args.job) if uri else None
    if sweep is None:
        print("  no sweep recorded yet")
        return 0
    from mlflow.tracking import MlflowClient

    from hpo.report.show import progress_line

    print(f"  {progress_line(MlflowClient(uri), sweep.info.run_id)}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    jobs = _jobs(args)
    if not args.follow:
        sys.stdout.write(jobs.get_job_logs(args.job))
        return 0
    import asyncio

    async def follow() -> None:
        async for lines in jobs.tail_job_logs(args.job):
            sys.stdout.write(lines)
            sys.stdout.flush()

    asyncio.run(follow())
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from hpo.execution.jobs import STOP_WAIT_SECONDS, wait

    jobs = _jobs(args)
    jobs.stop_job(args.job)
    print(f"stopping job {args.job}: its driver cancels the running trials and closes the sweep")
    state = wait(jobs, args.job, timeout=STOP_WAIT_SECONDS + 10)
    print(f"job {args.job}: {state}")
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, passed_on = parser.parse_known_args(argv)
    if passed_on and args.command != "submit":  # only submit passes options on
        parser.error(f"unrecognized arguments: {' '.join(passed_on)}")
    args.passed_on = passed_on
    # The terminal shows hpo's own lines: MLflow announces each schema check of a sqlite
    # store ("Creating initial MLflow database tables...") at INFO; warnings still show.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    # SIGTERM (e.g. from a scheduler) ends a sweep as cleanly as Ctrl-C does. SIGINT is set
    # too: Python installs its own Ctrl-C handler only when SIGINT was not ignored at start,
    # and a process started in the background by a non-interactive shell (a CI job, a
    # script's `hpo run ... &`) inherits it ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    if args.command in ("run", "resume", "replay"):
        from hpo.execution.jobs import adopt_credentials

        adopt_credentials()  # a submitted sweep's driver records as the user who submitted it
    commands = {
        "run": cmd_run,
        "resume": cmd_resume,
        "replay": cmd_replay,
        "show": cmd_show,
        "ui": cmd_ui,
        "submit": cmd_submit,
        "status": cmd_status,
        "logs": cmd_logs,
        "stop": cmd_stop,
    }
    try:
        return commands[args.command](args)
    except UsageError as exc:
        print(f"hpo: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TrackingRefused as exc:  # a server that refuses this user, or its Host name
        print(f"hpo: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        uri = getattr(args, "tracking_uri", None) or resolve_tracking_uri(None)
        denied = refusal(exc, uri, "what was asked")
        if denied is None:
            raise
        print(f"hpo: error: {denied}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hpo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
