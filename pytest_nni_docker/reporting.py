"""Text for people: report sections of failed tests and the end-of-run summary table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from pytest_nni_docker.diagnosis import describe_end_state, format_statistics, trial_hint
from pytest_nni_docker.errors import ExperimentFailed
from pytest_nni_docker.results import ExperimentResult

TAIL_LINES = 40


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def evidence_for_failure(error: ExperimentFailed) -> list[tuple[str, str]]:
    """Return the report sections of an experiment that did not finish."""
    sections = [("end state", f"{error.reason} ({describe_end_state(error.reason)})\n{error}")]
    sections.extend(error.evidence.items())
    return sections


def evidence_for_result(result: ExperimentResult) -> list[tuple[str, str]]:
    """Return the report sections of a finished experiment whose test failed.

    Trial failures (non-zero exits) are kept apart from NNI's own failures (an
    ERROR status, a crashed tuner or dispatcher).
    """
    sections = []
    summary = [
        f"experiment {result.id}: status {result.status}",
        f"end state: {result.end_reason or 'unknown'} ({describe_end_state(result.end_reason)})",
        f"trials by status: {format_statistics(result.counts)}",
        f"job statistics: {format_statistics(result.job_statistics)}",
    ]
    if result.errors:
        summary.append(f"NNI errors (NNI's own failure, not a trial's): {'; '.join(result.errors)}")
    if result.failed:
        summary.append(f"failed trials (the trial code's failure, not NNI's): {len(result.failed)} of {len(result.trials)}")
    if result.trials and not result.succeeded:
        summary.append(f"no trial succeeded, although NNI reports {result.status}")
    sections.append((f"experiment {result.id}", "\n".join(summary)))

    for trial in result.failed:
        body = [f"status: {trial.status}", f"parameters: {json.dumps(trial.parameters, sort_keys=True)}"]
        if trial.worker:
            body.append(f"worker: {trial.worker}")
        if trial.message:
            body.append(f"message: {trial.message}")
        hint = trial_hint(trial.stderr, str(result.config.get("trialCommand", "")))
        if hint:
            body.append(f"hint: {hint}")
        body.append("stderr (tail):")
        body.append(_tail(trial.stderr) or "(empty)")
        sections.append((f"trial {trial.id} ({trial.status})", "\n".join(body)))

    if result.manager_log:
        sections.append(("nnimanager.log (tail)", _tail(result.manager_log)))
    if result.dispatcher_log:
        sections.append(("dispatcher.log (tail)", _tail(result.dispatcher_log)))
    return sections


@dataclass
class SummaryRow:
    """One row of the end-of-run table: what the table shows of one experiment, finished or failed.

    Rows travel as JSON from pytest-xdist workers to the controller in a test
    report's ``user_properties``, because the results live in the workers.
    """

    test: str
    experiment_id: str
    mode: str
    nni_version: str
    status: str
    counts: dict[str, int]
    best_metric: float | None
    duration: float | None
    # Why the experiment counts as ended: "done", "timeout", "manager_died", ...
    end_reason: str = ""

    @classmethod
    def of(cls, test: str, result: ExperimentResult) -> SummaryRow:
        return cls(test, result.id, result.mode, result.nni_version, result.status, result.counts,
                   result.best_metric, result.duration, result.end_reason)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SummaryRow:
        return cls(**json.loads(text))


def summary_lines(results: list[SummaryRow] | list[tuple[str, ExperimentResult]]) -> list[str]:
    """Return the lines of the end-of-run table: one row per experiment."""
    if not results:
        return []
    header = ("test", "mode", "NNI", "trials by status", "best metric", "duration", "end state")
    rows = []
    for entry in results:
        row = entry if isinstance(entry, SummaryRow) else SummaryRow.of(*entry)
        counts = ", ".join(f"{status} {number}" for status, number in sorted(row.counts.items())) or "none"
        best = f"{row.best_metric:.6g}" if row.best_metric is not None else "-"
        duration = f"{row.duration:.1f} s" if row.duration is not None else "-"
        rows.append((row.test, row.mode, row.nni_version, counts, best, duration, row.end_reason or "-"))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines
