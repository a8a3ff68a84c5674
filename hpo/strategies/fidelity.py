"""What a model-based strategy learns from when trials report curves (multi-fidelity).

With a pruner, most trials never finish: a strategy that learns only from completed trials
learns from few, and late. Each trial's curve of the watched metric (``Trial.curve``, step ->
value, filled as it reports) says more. As BOHB does, the model is fitted at one budget: the
highest step that at least ``n_min`` trials have reached, each trial's value there being its
curve's value at the last step it reported up to that budget. Early in a sweep that is a low
rung where every trial counts; as trials get through the rungs the budget rises to the
longest trainings, so the model ranks configurations by how they end, not how they start.

Trials still running that have not reached the budget are pending (kept away from, as
without curves); failed trials go to the model as the strategy takes failures (GP: the
worst value at the budget). Trials that stopped below the budget (pruned there) are
``stopped``: TPE ranks them below every trial that reached it, deeper first, then by their
last value (Optuna's rule for pruned trials), so the configurations pruned early teach it
where not to look; GP leaves them out. Trials without a curve (a warm start's) are left out
of the model at that budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hpo.core.trial import Trial, TrialState


@dataclass
class FidelityView:
    """The trials as a model sees them at one ``budget`` (a step)."""

    budget: int
    observed: list[tuple[Trial, float]]  # reached the budget: their value there
    failed: list[Trial]
    pending: list[Trial]  # running, below the budget
    stopped: list[Trial]  # ended below the budget: pruned, or a shorter curve


def uses_curves(trials: Sequence[Trial]) -> bool:
    """Whether the sweep's trials report curves to learn from (a pruner watches one)."""
    return any(t.curve for t in trials)


def value_at(curve: dict[int, float], budget: int) -> float:
    """The curve's value at the last step it reported up to ``budget``."""
    return curve[max(step for step in curve if step <= budget)]


def fidelity_view(trials: Sequence[Trial], n_min: int) -> FidelityView | None:
    """The trials at the highest budget at least ``n_min`` of them have reached (None when
    fewer than ``n_min`` have reported at all)."""
    reached = sorted((max(t.curve) for t in trials if t.curve), reverse=True)
    if len(reached) < n_min:
        return None
    budget = reached[n_min - 1]
    observed = [
        (t, value_at(t.curve, budget)) for t in trials if t.curve and max(t.curve) >= budget
    ]
    seen = {id(t) for t, _ in observed}
    failed = [t for t in trials if t.state is TrialState.FAILED and id(t) not in seen]
    pending = [t for t in trials if t.state is TrialState.RUNNING and id(t) not in seen]
    stopped = [
        t
        for t in trials
        if t.curve and id(t) not in seen and t.state in (TrialState.PRUNED, TrialState.COMPLETE)
    ]
    return FidelityView(budget, observed, failed, pending, stopped)
