"""Typed results of an NNI experiment, decoded from NNI's REST data.

NNI's REST data is awkward: a metric's ``data`` is JSON encoded twice, a dict
metric's tuner value is its ``default`` key, NaN and Infinity come as bare
tokens, and NNI 3.0 can attach another trial's parameters to a trial record.
This module turns it into values a test can assert on.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union

TrialStatus = Literal[
    "WAITING", "RUNNING", "SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED", "UNKNOWN"
]
ExperimentStatus = Literal[
    "INITIALIZED", "RUNNING", "NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL", "DONE", "ERROR", "STOPPING", "STOPPED",
    "VIEWED", "UNKNOWN",
]
OptimizeMode = Literal["maximize", "minimize"]
Metric = Union[float, dict[str, Any], str, None]

ACTIVE_TRIAL_STATUSES = frozenset({"WAITING", "RUNNING", "UNKNOWN"})
FAILED_TRIAL_STATUSES = frozenset({"FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"})


def decode_metric(data: str) -> Metric:
    """Decode a metric ``data`` field: JSON text inside a JSON string.

    NaN, Infinity and -Infinity decode to the float values. Text that is not
    JSON is returned as it is.
    """
    value: Any = data
    for _ in range(2):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int):
        return float(value)
    return value


def metric_value(metric: Metric) -> float | None:
    """Return the number a tuner uses for ``metric``: the float, or a dict's ``default``."""
    if isinstance(metric, dict):
        metric = metric.get("default")
    if isinstance(metric, (int, float)) and not isinstance(metric, bool):
        return float(metric)
    return None


@dataclass
class Trial:
    """One NNI trial, with the parameters it really used and its decoded metrics.

    ``parameters`` come from the parameter id of the trial's metrics when there is
    one, because NNI 3.0 may attach another trial's parameters to the trial record.
    ``parameters_source`` names where they came from: ``"metric"`` (joined through
    the metric's parameter id) or ``"record"`` (the trial record, for a trial that
    reported no metric). ``parameters_mismatch`` contains the record's parameters when
    they differ from the joined ones. Times are Unix seconds. ``worker`` is the
    container the trial ran in. ``stdout``, ``stderr`` and ``trial_log`` hold at
    most the last 20 kB of each file, read when the experiment ended.
    """

    id: str
    status: TrialStatus
    parameters: dict[str, Any] = field(default_factory=dict)
    parameter_id: int | None = None
    final_metric: Metric = None
    intermediate_metrics: list[Metric] = field(default_factory=list)
    sequence_id: int | None = None
    start_time: float | None = None
    end_time: float | None = None
    worker: str | None = None
    message: str | None = None
    parameters_mismatch: dict[str, Any] | None = None
    parameters_source: Literal["metric", "record"] = "record"
    stdout: str = ""
    stderr: str = ""
    trial_log: str = ""

    @property
    def final_value(self) -> float | None:
        """The final metric as a float: the number itself or a dict metric's ``default``."""
        return metric_value(self.final_metric)

    @property
    def intermediate_values(self) -> list[float | None]:
        """The intermediate metrics as floats (a dict metric's ``default``), None where not a number."""
        return [metric_value(m) for m in self.intermediate_metrics]

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or None while the trial has not ended."""
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


@dataclass
class ExperimentResult:
    """The outcome of one NNI experiment, as a test receives it.

    ``nni_version`` is the version the manager reports (such as ``3.0.0``),
    ``config`` the v2 config as submitted (search space inline, paths inside the
    container), and ``start_time``/``end_time`` Unix seconds of the whole run,
    container start included. The ``assert_*`` methods are the helpers of
    ``pytest_nni_docker.assertions``.
    """

    id: str
    status: ExperimentStatus
    trials: list[Trial]
    optimize_mode: OptimizeMode = "maximize"
    nni_version: str = ""
    mode: Literal["local", "remote"] = "local"
    image: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    start_time: float | None = None
    end_time: float | None = None
    errors: list[str] = field(default_factory=list)
    job_statistics: dict[str, int] = field(default_factory=dict)
    end_reason: str = ""
    manager_log: str = ""
    dispatcher_log: str = ""

    @property
    def succeeded(self) -> list[Trial]:
        return [t for t in self.trials if t.status == "SUCCEEDED"]

    @property
    def failed(self) -> list[Trial]:
        """Trials that ended without success: failed, cancelled or stopped early."""
        return [t for t in self.trials if t.status in FAILED_TRIAL_STATUSES]

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    @property
    def counts(self) -> dict[str, int]:
        """Number of trials by status."""
        counts: dict[str, int] = {}
        for trial in self.trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        return counts

    @property
    def best_trial(self) -> Trial | None:
        """The trial with the best final metric by ``optimize_mode``; NaN never wins."""
        candidates = [t for t in self.trials if t.final_value is not None and not math.isnan(t.final_value)]
        if not candidates:
            return None
        if self.optimize_mode == "minimize":
            return min(candidates, key=lambda t: t.final_value)
        return max(candidates, key=lambda t: t.final_value)

    @property
    def best_metric(self) -> float | None:
        best = self.best_trial
        return best.final_value if best else None

    @property
    def search_space(self) -> dict[str, Any]:
        """The search space the experiment ran with, from its config."""
        return self.config.get("searchSpace") or {}

    def assert_all_succeeded(self, minimum: int = 1) -> None:
        from pytest_nni_docker.assertions import assert_all_succeeded

        assert_all_succeeded(self, minimum)

    def assert_best_metric(self, threshold: float | None = None, *, at_least: float | None = None,
                           at_most: float | None = None) -> None:
        from pytest_nni_docker.assertions import assert_best_metric

        assert_best_metric(self, threshold, at_least=at_least, at_most=at_most)

    def assert_intermediate_monotone(self, direction: Literal["increasing", "decreasing"] = "increasing", *,
                                     strict: bool = False, tolerance: float = 0.0) -> None:
        from pytest_nni_docker.assertions import assert_intermediate_monotone

        assert_intermediate_monotone(self, direction, strict=strict, tolerance=tolerance)

    def assert_parameters_in_search_space(self, search_space: dict[str, Any] | None = None) -> None:
        from pytest_nni_docker.assertions import assert_parameters_in_search_space

        assert_parameters_in_search_space(self, search_space)

    def assert_final_metric_matches(self, expected: Any, *, rel: float = 1e-9, abs_tol: float = 1e-12) -> None:
        from pytest_nni_docker.assertions import assert_final_metric_matches

        assert_final_metric_matches(self, expected, rel=rel, abs_tol=abs_tol)

    def trial(self, trial_id: str) -> Trial:
        """Return the trial with id ``trial_id``; raise KeyError naming the known ids."""
        for trial in self.trials:
            if trial.id == trial_id:
                return trial
        raise KeyError(f"No trial {trial_id!r} in experiment {self.id}; trials: {[t.id for t in self.trials]}")

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain data, plus a ``summary`` of the derived values for readers.

        ``from_dict`` ignores ``summary`` and recomputes it from the fields.
        """
        data = asdict(self)
        best = self.best_trial
        data["summary"] = {
            "counts": self.counts,
            "duration": self.duration,
            "best_trial": best.id if best else None,
            "best_metric": self.best_metric,
        }
        return data

    def to_json(self, path: str | Path | None = None, indent: int = 2) -> str:
        """Return the result as JSON and write it to ``path`` when given.

        NaN and infinite metrics are written as the bare tokens NaN and Infinity,
        as Python's json module and NNI write them.
        """
        text = json.dumps(self.to_dict(), indent=indent, default=str)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentResult:
        """Build a result from ``to_dict`` output; keys that are not fields (``summary``) are ignored."""
        trial_fields = {f.name for f in fields(Trial)}
        values = {key: value for key, value in data.items() if key in {f.name for f in fields(cls)}}
        values["trials"] = [Trial(**{k: v for k, v in trial.items() if k in trial_fields})
                            for trial in values.get("trials", [])]
        return cls(**values)

    @classmethod
    def from_json(cls, source: str | Path) -> ExperimentResult:
        """Load a result written by ``to_json``, from a path or from JSON text."""
        if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
            source = Path(source).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(source))


def build_trials(trial_jobs: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> list[Trial]:
    """Join NNI's trial records and metric records into ``Trial`` objects.

    Parameters are looked up through the ``parameterId`` of each trial's metrics
    (the truth under NNI 3.0's bug) and fall back to the trial record's own
    ``hyperParameters``. Intermediate metrics are ordered by their sequence number.
    """
    parameters_by_id: dict[int, dict[str, Any]] = {}
    record_parameters: dict[str, tuple[int | None, dict[str, Any]]] = {}
    for job in trial_jobs:
        entries = [json.loads(text) for text in job.get("hyperParameters") or []]
        for entry in entries:
            if isinstance(entry, dict) and entry.get("parameter_id") is not None:
                parameters_by_id[int(entry["parameter_id"])] = entry.get("parameters") or {}
        if entries and isinstance(entries[-1], dict):
            pid = entries[-1].get("parameter_id")
            record_parameters[job["trialJobId"]] = (int(pid) if pid is not None else None, entries[-1].get("parameters") or {})

    metrics_by_trial: dict[str, list[dict[str, Any]]] = {}
    for metric in metrics:
        metrics_by_trial.setdefault(metric.get("trialJobId", ""), []).append(metric)

    trials = []
    for job in sorted(trial_jobs, key=lambda j: (j.get("sequenceId") is None, j.get("sequenceId"), j["trialJobId"])):
        trial_id = job["trialJobId"]
        trial_metrics = metrics_by_trial.get(trial_id, [])
        final = [m for m in trial_metrics if m.get("type") == "FINAL"]
        periodical = sorted((m for m in trial_metrics if m.get("type") == "PERIODICAL"),
                            key=lambda m: (m.get("sequence", 0), m.get("timestamp", 0)))

        record_id, parameters = record_parameters.get(trial_id, (None, {}))
        parameter_id = record_id
        source: Literal["metric", "record"] = "record"
        # The final metric's parameter id wins over an intermediate one's.
        metric_ids = [int(m["parameterId"]) for m in [*periodical, *final] if m.get("parameterId") not in (None, "")]
        mismatch = None
        if metric_ids and metric_ids[-1] in parameters_by_id:
            parameter_id = metric_ids[-1]
            source = "metric"
            true_parameters = parameters_by_id[parameter_id]
            if true_parameters != parameters:
                if parameters:
                    mismatch = parameters
                parameters = true_parameters

        trials.append(Trial(
            id=trial_id,
            status=job.get("status", "UNKNOWN"),
            parameters=parameters,
            parameter_id=parameter_id,
            final_metric=decode_metric(final[-1]["data"]) if final else None,
            intermediate_metrics=[decode_metric(m["data"]) for m in periodical],
            sequence_id=job.get("sequenceId"),
            start_time=job["startTime"] / 1000 if job.get("startTime") else None,
            end_time=job["endTime"] / 1000 if job.get("endTime") else None,
            message=job.get("message") or None,
            parameters_mismatch=mismatch,
            parameters_source=source,
        ))
    return trials
