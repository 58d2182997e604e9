"""Assertions on an ``ExperimentResult`` that fail with the numbers behind them.

Each function raises ``AssertionError`` whose message names the trials, values
and limits involved, so a failed test explains itself without pytest's
assertion rewriting. ``ExperimentResult`` exposes each one as a method:

    assert_all_succeeded(result)                   # result.assert_all_succeeded()
    assert_best_metric(result, 0.95)               # best final metric reaches 0.95
    assert_intermediate_monotone(result, "increasing")
    assert_parameters_in_search_space(result)      # the config's searchSpace
    assert_final_metric_matches(result, lambda p: p["x"] ** 2)

The search space rules follow how NNI 3.0 turns a tuner's sample into
parameters (``deformat_parameters`` in ``nni/common/hpo_utils/formatting.py``):
randint is an integer in [ceil(lower), ceil(upper)), and a q-type value is
round(x / q) * q, clipped into [low, high] for the uniform kinds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pytest_nni_docker.results import ExperimentResult, Trial

Direction = Literal["increasing", "decreasing"]

# How far a value may sit from a multiple of q, relative to the larger of |value|
# and q, and still count as that multiple. NNI computes round(x / q) * q in
# float64, so exact comparison would reject values such as 0.30000000000000004.
Q_TOLERANCE = 1e-9
# How many offending trials a message lists before it ends with "and N more".
MAX_LISTED = 10


def _describe(trial: Trial) -> str:
    return f"trial {trial.id} ({trial.status}, parameters {json.dumps(trial.parameters, sort_keys=True, default=str)})"


def _listing(lines: list[str]) -> str:
    listed = lines[:MAX_LISTED]
    if len(lines) > MAX_LISTED:
        listed.append(f"... and {len(lines) - MAX_LISTED} more")
    return "\n  " + "\n  ".join(listed)


def _format_number(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


def assert_all_succeeded(result: ExperimentResult, minimum: int = 1) -> None:
    """Assert that the experiment ran at least ``minimum`` trials and every one succeeded."""
    if len(result.trials) < minimum:
        raise AssertionError(
            f"Experiment {result.id} ran {len(result.trials)} trials, expected at least {minimum} "
            f"(experiment status {result.status}, ended by {result.end_reason or 'unknown'})."
        )

    unsuccessful = [t for t in result.trials if t.status != "SUCCEEDED"]
    if unsuccessful:
        lines = []
        for trial in unsuccessful:
            stderr = trial.stderr.strip().splitlines()
            last = f"; last stderr line: {stderr[-1]}" if stderr else ""
            lines.append(f"{_describe(trial)}{last}")
        raise AssertionError(
            f"{len(unsuccessful)} of {len(result.trials)} trials of experiment {result.id} did not succeed "
            f"(by status: {result.counts}):{_listing(lines)}"
        )


def assert_best_metric(
    result: ExperimentResult,
    threshold: float | None = None,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
) -> None:
    """Assert that the best final metric reaches ``threshold`` or lies within the given bounds.

    ``threshold`` follows the tuner's ``optimize_mode``: the best metric must be at
    least ``threshold`` when maximizing and at most ``threshold`` when minimizing.
    ``at_least`` and ``at_most`` are plain bounds. A dict metric counts by its
    ``default`` value, and NaN never counts as the best.
    """
    if threshold is None and at_least is None and at_most is None:
        raise TypeError("assert_best_metric needs a threshold, at_least or at_most.")

    best = result.best_trial
    values = [t.final_value for t in result.trials if t.final_value is not None]
    context = (
        f"experiment {result.id}, optimize_mode {result.optimize_mode}, "
        f"{len(values)} of {len(result.trials)} trials with a final metric: "
        f"[{', '.join(_format_number(v) for v in values[:MAX_LISTED])}{', ...' if len(values) > MAX_LISTED else ''}]"
    )
    if best is None or best.final_value is None:
        raise AssertionError(f"No trial reported a final metric that is a number ({context}).")

    value = best.final_value
    failures = []
    if threshold is not None:
        if result.optimize_mode == "minimize" and not value <= threshold:
            failures.append(f"is above the threshold {_format_number(threshold)} (minimize)")
        if result.optimize_mode == "maximize" and not value >= threshold:
            failures.append(f"is below the threshold {_format_number(threshold)} (maximize)")
    if at_least is not None and not value >= at_least:
        failures.append(f"is below at_least={_format_number(at_least)}")
    if at_most is not None and not value <= at_most:
        failures.append(f"is above at_most={_format_number(at_most)}")
    if failures:
        raise AssertionError(
            f"Best final metric {_format_number(value)} of {_describe(best)} {' and '.join(failures)} ({context})."
        )


def _violations(values: list[float | None], direction: Direction, strict: bool, tolerance: float) -> list[str]:
    problems = []
    for index, value in enumerate(values):
        if value is None or math.isnan(value):
            problems.append(f"step {index} is {value!r}, not a number")
    for index in range(1, len(values)):
        before, after = values[index - 1], values[index]
        if before is None or after is None or math.isnan(before) or math.isnan(after):
            continue
        step = after - before if direction == "increasing" else before - after
        if strict and not step > tolerance:
            problems.append(f"step {index - 1} -> {index}: {before:.6g} -> {after:.6g}")
        elif not strict and step < -tolerance:
            problems.append(f"step {index - 1} -> {index}: {before:.6g} -> {after:.6g}")
    return problems


def assert_intermediate_monotone(
    result: ExperimentResult,
    direction: Direction = "increasing",
    *,
    strict: bool = False,
    tolerance: float = 0.0,
    trials: Iterable[Trial] | None = None,
) -> None:
    """Assert that every trial's intermediate metrics move in one ``direction``.

    Without ``strict``, equal neighbours pass. ``tolerance`` allows steps against
    the direction up to that size (noise). Dict metrics count by their ``default``
    value. NaN and non-numeric values fail. Trials with fewer than two
    intermediate metrics pass. ``trials`` limits the check, e.g. to
    ``result.succeeded``.
    """
    if direction not in ("increasing", "decreasing"):
        raise ValueError(f"direction must be 'increasing' or 'decreasing', not {direction!r}.")

    checked = list(result.trials if trials is None else trials)
    lines = []
    for trial in checked:
        values = trial.intermediate_values
        problems = _violations(values, direction, strict, tolerance)
        if problems:
            curve = ", ".join(_format_number(v) for v in values)
            lines.append(f"{_describe(trial)}: [{curve}]; " + "; ".join(problems))
    if lines:
        kind = f"strictly {direction}" if strict else f"{direction}"
        raise AssertionError(
            f"{len(lines)} of {len(checked)} intermediate curves of experiment {result.id} are not {kind}"
            f"{f' (tolerance {tolerance:g})' if tolerance else ''}:{_listing(lines)}"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_multiple(value: float, q: float) -> bool:
    nearest = round(value / q) * q
    return abs(value - nearest) <= Q_TOLERANCE * max(abs(value), abs(q), 1.0)


def _check_quantized(value: float, q: float, low: float | None, high: float | None) -> str | None:
    # NNI clips q-values into [low, high] after rounding, so a bound that is not a
    # multiple of q is valid too.
    if low is not None and value in (low, high):
        return None
    if not _is_multiple(value, q):
        return f"is not a multiple of q={q:g}"
    return None


def _is_nested_choice(spec: Mapping[str, Any]) -> bool:
    options = spec.get("_value")
    return (spec.get("_type") == "choice" and isinstance(options, list) and bool(options)
            and all(isinstance(option, dict) and "_name" in option for option in options))


def check_value(spec: Mapping[str, Any], value: Any) -> list[str]:
    """Return why ``value`` is outside the search space entry ``spec``; empty when inside.

    ``spec`` is one entry of an NNI search space, such as
    ``{"_type": "quniform", "_value": [0, 1, 0.1]}``. Nested choices are checked
    by ``check_parameters``.
    """
    kind = spec.get("_type")
    args = spec.get("_value")
    if not isinstance(args, list):
        return [f"has an invalid search space entry {dict(spec)!r}"]

    if kind == "choice":
        return [] if value in args else [f"is not one of the choices {args!r}"]

    if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
        return [f"is not a finite number as {kind} gives"]

    if kind == "randint":
        lower, upper = math.ceil(float(args[0])), math.ceil(float(args[1]))
        if isinstance(value, float) and not value.is_integer():
            return ["is not an integer as randint gives"]
        if not lower <= value < upper:
            return [f"is outside randint's range [{lower}, {upper})"]
        return []

    if kind in ("uniform", "quniform", "loguniform", "qloguniform"):
        low, high = float(args[0]), float(args[1])
        if not low <= value <= high:
            return [f"is outside {kind}'s range [{low:g}, {high:g}]"]
        if kind.startswith("q"):
            problem = _check_quantized(float(value), float(args[2]), low, high)
            return [problem] if problem else []
        return []

    if kind == "normal":
        return []
    if kind == "qnormal":
        problem = _check_quantized(float(value), float(args[2]), None, None)
        return [problem] if problem else []
    if kind == "lognormal":
        return [] if value > 0 else ["is not positive as lognormal gives"]
    if kind == "qlognormal":
        if value < 0:
            return ["is negative, but qlognormal gives values of at least 0"]
        problem = _check_quantized(float(value), float(args[2]), None, None)
        return [problem] if problem else []

    return [f"has the search space type {kind!r}, which this check does not know"]


def check_parameters(search_space: Mapping[str, Any], parameters: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Return every way ``parameters`` fall outside ``search_space``; empty when inside.

    A nested choice's value is a dict with ``_name`` and the chosen option's own
    parameters, which are checked against that option. Problems inside it are
    named by their path, such as ``layer[conv].kernel``.
    """
    problems = []
    for name, spec in search_space.items():
        path = f"{prefix}{name}"
        if name not in parameters:
            problems.append(f"{path} is missing")
            continue
        value = parameters[name]

        if not _is_nested_choice(spec):
            problems.extend(f"{path}={value!r} {problem}" for problem in check_value(spec, value))
            continue

        names = [option["_name"] for option in spec["_value"]]
        if not isinstance(value, Mapping) or "_name" not in value:
            problems.append(f"{path}={value!r} is not a dict with _name, as the nested choice of {names!r} gives")
            continue
        option = next((o for o in spec["_value"] if o["_name"] == value["_name"]), None)
        if option is None:
            problems.append(f"{path}._name={value['_name']!r} is not one of {names!r}")
            continue
        sub_space = {key: sub for key, sub in option.items() if key != "_name"}
        sub_values = {key: sub for key, sub in value.items() if key != "_name"}
        problems.extend(check_parameters(sub_space, sub_values, prefix=f"{path}[{value['_name']}]."))

    for name in sorted(set(parameters) - set(search_space)):
        problems.append(f"{prefix}{name}={parameters[name]!r} is not in the search space")
    return problems


def assert_parameters_in_search_space(
    result: ExperimentResult,
    search_space: Mapping[str, Any] | None = None,
) -> None:
    """Assert that each trial's parameters lie in ``search_space`` (default: the config's).

    Checks every NNI type: choice (nested too), randint [lower, upper), uniform,
    quniform, loguniform, qloguniform [low, high], normal, qnormal, lognormal and
    qlognormal. A q-type value must be a multiple of q or, for the uniform kinds,
    one of the bounds that NNI clips to. Trials with no parameters (still waiting)
    are skipped.
    """
    space = search_space if search_space is not None else result.config.get("searchSpace")
    if not isinstance(space, Mapping) or not space:
        raise ValueError(
            f"Experiment {result.id} has no searchSpace in its config. Pass search_space= explicitly."
        )

    lines = []
    checked = 0
    for trial in result.trials:
        if not trial.parameters:
            continue
        checked += 1
        problems = check_parameters(space, trial.parameters)
        if problems:
            lines.append(f"trial {trial.id}: " + "; ".join(problems))
    if lines:
        raise AssertionError(
            f"{len(lines)} of {checked} trials of experiment {result.id} have parameters outside the search space "
            f"{json.dumps(space, sort_keys=True)}:{_listing(lines)}"
        )


def assert_final_metric_matches(
    result: ExperimentResult,
    expected: Callable[[dict[str, Any]], float],
    *,
    rel: float = 1e-9,
    abs_tol: float = 1e-12,
) -> None:
    """Assert that every succeeded trial's final metric equals ``expected(parameters)``.

    This is how a test proves that ``trial.parameters`` are the ones the trial
    really used: make the trial's metric a known function of its parameters.
    Dict metrics compare by their ``default`` value. NaN equals NaN here.
    """
    lines = []
    succeeded = result.succeeded
    for trial in succeeded:
        want = float(expected(trial.parameters))
        got = trial.final_value
        if got is not None and (math.isclose(got, want, rel_tol=rel, abs_tol=abs_tol) or (math.isnan(got) and math.isnan(want))):
            continue
        note = ""
        if trial.parameters_mismatch is not None:
            note = f" (NNI's trial record had parameters {json.dumps(trial.parameters_mismatch, sort_keys=True)})"
        lines.append(f"{_describe(trial)}: final metric {_format_number(got)}, expected {want:.6g}{note}")
    if not succeeded:
        raise AssertionError(f"Experiment {result.id} has no succeeded trial to compare (by status: {result.counts}).")
    if lines:
        raise AssertionError(
            f"{len(lines)} of {len(succeeded)} succeeded trials of experiment {result.id} report a final metric "
            f"that is not the expected function of their parameters:{_listing(lines)}"
        )
