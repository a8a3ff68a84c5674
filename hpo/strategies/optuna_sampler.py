"""Optuna samplers behind the ask/tell interface: ``tpe`` and ``optuna:NAME``.

Each trial is an Optuna trial of an in-memory study, asked define-by-run: the space's
parameters are suggested in tree order, each under its unique key (the branch index is
part of a conditional parameter's key, so a name shared by two branches stays two Optuna
parameters with their own distributions), and only those active under the choices made so
far. A `Choice` is suggested as its option index.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from typing import Any

from hpo.core.space import Choice, Float, Int, Param
from hpo.strategies.base import Strategy, Trial, TrialState
from hpo.strategies.curve_study import CurveStudy
from hpo.strategies.fidelity import fidelity_view, uses_curves


def _sampler_classes() -> dict[str, type]:
    import optuna.samplers

    classes = {}
    for attr in dir(optuna.samplers):
        cls = getattr(optuna.samplers, attr)
        if attr.endswith("Sampler") and isinstance(cls, type) and not attr.startswith("Base"):
            classes[attr[: -len("Sampler")].lower()] = cls
    # Samplers that need a fixed search space or extra arguments cannot serve a tree space.
    for unusable in ("grid", "bruteforce", "partialfixed"):
        classes.pop(unusable, None)
    return classes


# Samplers whose module Optuna imports only when it first samples: checked up front so a
# missing one stops the sweep before it starts, not at its first trial.
NEEDS = {"cmaes": "cmaes", "gp": "torch"}


# Samplers that search for the Pareto front of several objectives (the others raise in
# Optuna at their first trial, or model the first objective only).
MULTI_OBJECTIVE_SAMPLERS = ("gp", "nsgaii", "nsgaiii", "qmc", "random", "tpe")

# Trials Optuna's TPESampler samples at random before it models (its default).
DEFAULT_STARTUP_TRIALS = 10

# What `tpe` passes to Optuna's TPESampler (a user's options override them).
TPE_SETTINGS = {"multivariate": True, "group": True, "constant_liar": True}


def optuna_sampler_names() -> list[str]:
    return sorted(_sampler_classes())


class OptunaSampler(Strategy):
    """Any Optuna sampler, by name, driven through Optuna's ask/tell.

    Parameters
    ----------
    space, direction, seed
        As for every strategy; the seed is passed to the sampler.
    sampler : str
        An Optuna sampler by its class name without "Sampler", case-insensitive: "tpe",
        "random", "qmc", "cmaes", "nsgaii", "nsgaiii", "gp" (needs torch).
    **sampler_options
        Passed to the sampler's constructor.

    Examples
    --------
    >>> from hpo.core.space import Float
    >>> s = OptunaSampler({"x": Float(0.0, 1.0)}, sampler="qmc", seed=0)
    >>> [t] = s.ask()
    >>> s.tell(t, t.params["x"])
    """

    name = "optuna"
    multi_objective = True  # as far as the sampler does: checked in `_configure`

    def _configure(self, *, sampler: str = "tpe", **sampler_options: Any) -> None:
        import optuna

        classes = _sampler_classes()
        key = sampler.lower()
        if key not in classes:
            raise ValueError(
                f"unknown Optuna sampler {sampler!r}; choose one of: {', '.join(sorted(classes))}"
            )
        cls = classes[key]
        if self.n_objectives > 1 and key not in MULTI_OBJECTIVE_SAMPLERS:
            raise ValueError(
                f"Optuna's {cls.__name__} optimises one objective, got {self.n_objectives} "
                f"directions; for several use optuna:NAME with NAME one of "
                f"{', '.join(MULTI_OBJECTIVE_SAMPLERS)}"
            )
        module = NEEDS.get(key)
        if module is not None and importlib.util.find_spec(module) is None:
            raise ValueError(f"optuna:{key} needs the {module!r} package, which is not installed")
        options = dict(sampler_options)
        if "seed" in inspect.signature(cls).parameters:
            options.setdefault("seed", self.seed)
        self.sampler_name = key
        self.sampler_options = sampler_options
        self.recipe = {
            "strategy": f"optuna:{key}" if type(self) is OptunaSampler else self.name,
            "options": dict(sampler_options),
        }
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            # Optuna marks multivariate/group TPE "experimental"; they are what we want.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._sampler = cls(**options)
        self.study = optuna.create_study(directions=list(self.directions), sampler=self._sampler)
        self._asked: dict[int, Any] = {}  # our trial number -> Optuna trial
        self._curves = CurveStudy(
            lambda: optuna.create_study(directions=list(self.directions), sampler=self._sampler),
            self._frozen,
        )

    def _suggest(self, n: int) -> list[dict[str, Any]]:
        if uses_curves(self.known):  # a pruner watches curves: learn from them (BOHB-style)
            return self._suggest_from_curves(n)
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature notices, per suggest call
            for number in self._upcoming_numbers(n):
                optuna_trial = self.study.ask()
                self._asked[number] = optuna_trial
                out.append(self._define_by_run(optuna_trial))
        return out

    def _suggest_from_curves(self, n: int) -> list[dict[str, Any]]:
        """Suggestions of a study kept in step with the trials' values at the fidelity
        view's budget (see `hpo.strategies.fidelity` and `hpo.strategies.curve_study`)."""
        startup = self.sampler_options.get("n_startup_trials", DEFAULT_STARTUP_TRIALS)
        view = fidelity_view(self.known, max(int(startup), 2))
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._curves.update(view, self.pending, self.trials, self.direction)
            for number in self._upcoming_numbers(n):  # each stays running: the next avoids it
                out.append(self._define_by_run(self._curves.ask(number)))
        return out

    def _frozen(
        self,
        trial: Trial,
        state: Any,
        values: Any = None,
        intermediate: dict[int, float] | None = None,
    ) -> Any:
        """``trial`` as a finished (or running) Optuna trial of ``state`` with ``values``
        (and, for a pruned one, its ``intermediate`` values by step)."""
        import optuna

        params = _plain(trial.assignment)
        distributions = {k: optuna_distribution(self.space.param(k)) for k in params}
        return optuna.trial.create_trial(
            params=params,
            distributions=distributions,
            values=None if values is None else list(values),
            intermediate_values=intermediate,
            state=state,
        )

    def _on_restore(self, trial: Trial) -> None:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if trial.state is TrialState.RUNNING:
                # To be run again: an Optuna trial asked with these values fixed.
                self.study.enqueue_trial(_plain(trial.assignment), skip_if_exists=False)
                optuna_trial = self.study.ask()
                self._define_by_run(optuna_trial)
                self._asked[trial.number] = optuna_trial
                return
            state = {
                TrialState.COMPLETE: optuna.trial.TrialState.COMPLETE,
                TrialState.PRUNED: optuna.trial.TrialState.PRUNED,
                TrialState.FAILED: optuna.trial.TrialState.FAIL,
            }[trial.state]
            self.study.add_trial(self._frozen(trial, state, trial.values))

    def _define_by_run(self, optuna_trial: Any) -> dict[str, Any]:
        assignment: dict[str, Any] = {}
        for p in self.space.params:
            if self.space.is_active(p, assignment):
                assignment[p.key] = _suggest(optuna_trial, p)
        return assignment

    def _on_tell(self, trial: Trial) -> None:
        from optuna.trial import TrialState as OptunaState

        optuna_trial = self._asked.pop(trial.number, None)
        if optuna_trial is None:  # suggested from curves, by a study made for that ask
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            worst = self.worst_value() if trial.attrs.get("infeasible") else None
            if worst is not None:  # as bad as the worst seen: TPE learns to avoid the region
                self.study.tell(optuna_trial, worst)
            elif trial.state is TrialState.COMPLETE:
                self.study.tell(optuna_trial, list(trial.values))
            elif trial.state is TrialState.PRUNED:
                # TPE ranks pruned trials by how far they got and their last value there.
                if trial.intermediate is not None:
                    step, value = trial.intermediate
                    optuna_trial.report(value, step)
                self.study.tell(optuna_trial, state=OptunaState.PRUNED)
            else:
                self.study.tell(optuna_trial, state=OptunaState.FAIL)

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "sampler": type(self._sampler).__name__,
            **{f"sampler.{k}": v for k, v in self.sampler_options.items()},
        }


def _plain(assignment: dict[str, Any]) -> dict[str, Any]:
    """An assignment with NumPy scalars made Python's, as Optuna stores parameters."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in assignment.items()}


def optuna_distribution(p: Param) -> Any:
    """The Optuna distribution of parameter ``p`` (a `Choice` as its option index)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    dim = p.dim
    if isinstance(dim, Float):
        return FloatDistribution(dim.low, dim.high, log=dim.log)
    if isinstance(dim, Int):
        return IntDistribution(dim.low, dim.high, log=dim.log, step=dim.step)
    return CategoricalDistribution(list(range(len(dim.options))))


def _suggest(optuna_trial: Any, p: Param) -> Any:
    dim = p.dim
    if isinstance(dim, Float):
        return optuna_trial.suggest_float(p.key, dim.low, dim.high, log=dim.log)
    if isinstance(dim, Int):
        return optuna_trial.suggest_int(p.key, dim.low, dim.high, step=dim.step, log=dim.log)
    if isinstance(dim, Choice):
        return optuna_trial.suggest_categorical(p.key, list(range(len(dim.options))))
    raise TypeError(f"no Optuna distribution for {dim!r}")


class TPE(OptunaSampler):
    """Tree-structured Parzen estimators: Optuna's TPESampler, multivariate and grouped
    (so conditional branches are modelled jointly), with the constant liar so trials
    still running keep new suggestions away from them.

    Examples
    --------
    >>> from hpo.core.space import Float
    >>> s = TPE({"x": Float(0.0, 1.0)}, seed=0)
    >>> trials = s.ask(2)
    """

    name = "tpe"

    def _configure(self, **sampler_options: Any) -> None:
        super()._configure(sampler="tpe", **{**TPE_SETTINGS, **sampler_options})


class BOHB(TPE):
    """BOHB by its name: TPE that learns from the trials' curves, with the Hyperband
    pruner (`hpo.SweepConfig` sets ``pruner="hyperband"`` for it and refuses another).

    Examples
    --------
    >>> from hpo.core.space import Float
    >>> BOHB({"x": Float(0.0, 1.0)}, seed=0).settings()["strategy"]
    'bohb'
    """

    name = "bohb"
