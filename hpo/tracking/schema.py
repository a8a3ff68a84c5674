"""Every name hpo writes to MLflow, and how its values are written and read back.

A sweep is a parent run (`SweepTag`), each trial a child run of it (`TrialTag`); the
sweep's best model is one of MLflow's logged models (`ModelTag`). No other module spells
an ``hpo.*`` name: the writer, the reader, the summary and `hpo show` all take them from
here, so what is written and what is read back cannot drift apart. MLflow's own rules
for keys and values (`check_name`, the length limits) are here too: the workers check
reported metrics with them before anything reaches MLflow.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from hpo.core.directions import Directions
from hpo.core.trial import TrialState

# MLflow's own tags that hpo sets.
PARENT_RUN = "mlflow.parentRunId"
NOTE = "mlflow.note.content"  # the run's description, shown on its page
# The MLflow UI opens an experiment of this kind in its model-training view (runs, charts,
# models), not the GenAI one (traces, evaluation runs) it guesses for an untagged one.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}

OBJECTIVE = "objective"  # the metric of a single objective's value
ONE_OBJECTIVE = (OBJECTIVE,)
TRUE = "true"  # a flag tag's value


class SweepTag:
    """Tags of the parent run."""

    SWEEP = "hpo.sweep"  # "true": what makes a run a sweep
    STRATEGY = "hpo.strategy"
    REPLAY_OF = "hpo.replay_of"  # a schedule replay's: the sweep it replays
    DIRECTION = "hpo.direction"  # "minimize", or "minimize,maximize" for several
    SEED = "hpo.seed"
    RECIPE = "hpo.recipe"  # JSON: the sweep's configuration (`hpo.sweep.config`)
    SPACE_DIGEST = "hpo.space_digest"
    JOB_ID = "hpo.job_id"  # the Ray job that runs a submitted sweep's driver
    WAITING = "hpo.waiting"  # why no worker has started yet ("" once one has)
    OBJECTIVES = "hpo.objectives"  # JSON list: several objectives' names, once known
    WARM_START = "hpo.warm_start"  # what a warm start took, in words
    EXPERIMENT_FILE = "hpo.experiment_file"
    PRUNE_METRIC = "hpo.prune_metric"
    RESUMED = "hpo.resumed"  # how often
    # Written when the sweep ends (`hpo.report.summary.closing_tags`).
    N_COMPLETE = "hpo.n_complete"
    N_FAILED = "hpo.n_failed"
    N_PRUNED = "hpo.n_pruned"
    N_INFEASIBLE = "hpo.n_infeasible"
    ELAPSED_SECONDS = "hpo.elapsed_seconds"
    N_PARETO = "hpo.n_pareto"
    PARETO_FRONT = "hpo.pareto_front"
    BEST_VALUE = "hpo.best_value"
    BEST_TRIAL = "hpo.best_trial"
    BEST_RUN_ID = "hpo.best_run_id"
    INTERRUPTED = "hpo.interrupted"
    TIMED_OUT = "hpo.timed_out"
    STOPPED_BY = "hpo.stopped_by"
    ERROR = "hpo.error"
    BEST_MODEL_URI = "hpo.best_model_uri"  # runs:/<run id>/<folder> of the best trial's model
    BEST_MODEL_TRIAL = "hpo.best_model_trial"
    BEST_MODEL_ID = "hpo.best_model_id"
    REGISTERED_MODEL = "hpo.registered_model"  # NAME/VERSION
    BEST_MODEL_ERROR = "hpo.best_model_error"


# How one run of a sweep ended: a resumed sweep deletes these before it goes on (the new
# ending writes its own).
ENDING_TAGS = (SweepTag.INTERRUPTED, SweepTag.TIMED_OUT, SweepTag.STOPPED_BY, SweepTag.ERROR)


def count_tag(state: TrialState) -> str:
    """``hpo.n_complete``, ``hpo.n_failed``, ``hpo.n_pruned``."""
    return f"hpo.n_{state.value.lower()}"


class TrialTag:
    """Tags of a trial's child run."""

    TRIAL = "hpo.trial"  # its number
    STATE = "hpo.state"  # a `TrialState`
    ERROR = "hpo.error"  # why it failed
    ATTEMPT = "hpo.attempt"  # attempts started
    ASSIGNMENT = "hpo.assignment"  # JSON: the strategy's flat view, for a resume
    PARAMS = "hpo.params"  # JSON: the nested params, when short enough for a tag
    ENQUEUED = "hpo.enqueued"
    INFEASIBLE = "hpo.infeasible"
    CANCELLED = "hpo.cancelled"  # by an interrupt or the sweep's timeout: resume reruns it
    SECONDS = "hpo.seconds"  # the objective's time
    TRUNCATED = "hpo.truncated"  # params cut to MLflow's limit
    PRUNER = "hpo.pruner"
    PRUNED_STEP = "hpo.pruned_step"
    PRUNE_REASON = "hpo.prune_reason"
    RESOURCES = "hpo.resources"  # what the trial asked of the cluster
    NODE = "hpo.node"  # the address of the node it ran on
    GPUS = "hpo.gpus"  # the GPUs Ray gave it (its CUDA_VISIBLE_DEVICES), when it had any
    # Prefix of a population-based training segment's attributes: hpo.pbt.member, .parent,
    # .from_step, .until_step, .donor, .end_step (see `hpo.strategies.pbt`).
    SEGMENT = "hpo.pbt."


def segment_tags(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    """The run tags of a segment's ``attrs`` (those of ``keys`` that are set)."""
    return {TrialTag.SEGMENT + k: str(attrs[k]) for k in keys if attrs.get(k) is not None}


def segment_attrs(tags: Mapping[str, str]) -> dict[str, int]:
    """A segment's attributes read back from its run's tags (empty for any other run)."""
    n = len(TrialTag.SEGMENT)
    return {k[n:]: int(v) for k, v in tags.items() if k.startswith(TrialTag.SEGMENT) and v}


def attempt_error_tag(attempt: int) -> str:
    """Why attempt ``attempt`` of a trial ended without an outcome."""
    return f"hpo.attempt_{attempt}_error"


class ModelTag:
    """Tags of the sweep's logged best model and of its registered versions."""

    SWEEP_ID = "hpo.sweep_id"
    TRIAL = "hpo.trial"
    OBJECTIVE = "hpo.objective"


# MLflow's run status of each trial state.
RUN_STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.FAILED: "FAILED",
    TrialState.PRUNED: "KILLED",
}

# MLflow's limits on keys and values: checked before a sweep, never met mid-sweep.
PARAM_VALUE_LIMIT, TAG_VALUE_LIMIT, KEY_LIMIT = 6000, 8000, 250
ERROR_LIMIT = 5000  # of an error tag: room for a traceback's last line
_KEY_CHARACTERS = re.compile(r"[/\w.\- :]*")


# -- encoding and decoding -----------------------------------------------------------------
def sweep_filter() -> str:
    """The search filter of sweeps (parent runs)."""
    return f"tags.`{SweepTag.SWEEP}` = '{TRUE}'"


def job_filter(job_id: str) -> str:
    """The search filter of the sweep Ray job ``job_id`` runs."""
    return f"{sweep_filter()} and tags.`{SweepTag.JOB_ID}` = '{job_id}'"


def trials_filter(sweep_id: str, trial: int | None = None) -> str:
    """The search filter of a sweep's child runs, or of trial number ``trial``'s."""
    where = f"tags.`{PARENT_RUN}` = '{sweep_id}'"
    return where if trial is None else f"{where} and tags.`{TrialTag.TRIAL}` = '{trial}'"


def flag(tags: Mapping[str, str], key: str) -> bool:
    return tags.get(key) == TRUE


def encode_recipe(recipe: Mapping[str, Any]) -> str:
    """The ``hpo.recipe`` tag's JSON (`hpo.sweep.config.SweepConfig.recipe`)."""
    return json.dumps(recipe, default=str)


def encode_objectives(names: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(names))


def objective_names(sweep_tags: Mapping[str, str]) -> tuple[str, ...]:
    """The metric names of a sweep's objectives: "objective", or those of several (its
    ``hpo.objectives`` tag; empty before a result named them)."""
    if len(sweep_directions(sweep_tags)) == 1:
        return ONE_OBJECTIVE
    return tuple(json.loads(sweep_tags.get(SweepTag.OBJECTIVES, "[]")))


def sweep_directions(sweep_tags: Mapping[str, str]) -> Directions:
    return Directions.parse(sweep_tags.get(SweepTag.DIRECTION, "minimize"))


def objective_values(
    metrics: Mapping[str, float], names: tuple[str, ...]
) -> tuple[float, ...] | None:
    """A child run's value of each objective, or None unless it has them all."""
    if not names or any(n not in metrics for n in names):
        return None
    return tuple(metrics[n] for n in names)


def param_text(value: Any) -> str:
    """A param's value as MLflow stores it, cut to its limit."""
    text = str(value)
    return text if len(text) <= PARAM_VALUE_LIMIT else text[: PARAM_VALUE_LIMIT - 3] + "..."


def param_value(text: str) -> Any:
    """A param as MLflow stores it (a string) back as the number, bool or None it was."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(text, text)


def truncated_params(params: dict[str, Any]) -> dict[str, str]:
    """The ``hpo.truncated`` tag for params whose values exceed MLflow's limit (else empty)."""
    long = [
        f"{k} ({len(str(v))} chars)" for k, v in params.items() if len(str(v)) > PARAM_VALUE_LIMIT
    ]
    if not long:
        return {}
    note = f"param values cut to {PARAM_VALUE_LIMIT} characters: " + ", ".join(long)
    return {TrialTag.TRUNCATED: note[:TAG_VALUE_LIMIT]}


def error_text(error: str) -> str:
    return error[:ERROR_LIMIT]


def check_name(kind: str, name: Any) -> None:
    """Raise ValueError unless MLflow accepts ``name`` as a param or metric key."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a {kind} name must be a non-empty string, got {name!r}")
    if len(name) > KEY_LIMIT:
        raise ValueError(
            f"a {kind} name must have at most {KEY_LIMIT} characters (MLflow's limit), got "
            f"{len(name)}: {name[:60]!r}..."
        )
    if not _KEY_CHARACTERS.fullmatch(name):
        raise ValueError(
            f"a {kind} name may only contain letters, digits, _ - . / : and spaces (MLflow's "
            f"rule), got {name!r}"
        )
    if posixpath.normpath(name) != name or name.startswith(("/", "..")):
        raise ValueError(
            f"a {kind} name must be a plain relative path (MLflow stores it as one), got {name!r}"
        )
