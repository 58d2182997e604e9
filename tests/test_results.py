"""The result model: decoding NNI's metric data, joining parameters, JSON export.

The unit tests feed records shaped like those NNI 3.0 returned in a real run.
The experiments at the end run real NNI trials that report each kind of metric.
"""

import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

from pytest_nni_docker.results import ExperimentResult, Trial, build_trials, decode_metric, metric_value

DATA = Path(__file__).parent / "data"
METRIC_KINDS = DATA / "metric_kinds" / "config.yml"
ALL_TYPES = DATA / "all_types" / "config.yml"


def _job(trial_id, sequence, parameter_id, parameters, status="SUCCEEDED", start=1000, end=4000):
    entry = {"parameter_id": parameter_id, "parameter_source": "algorithm", "parameters": parameters, "parameter_index": 0}
    return {
        "trialJobId": trial_id, "status": status, "sequenceId": sequence, "startTime": start, "endTime": end,
        "hyperParameters": [json.dumps(entry)],
    }


def _metric(trial_id, parameter_id, value, kind="FINAL", sequence=0, timestamp=0):
    return {
        "timestamp": timestamp, "trialJobId": trial_id, "parameterId": str(parameter_id), "type": kind,
        "sequence": sequence, "data": json.dumps(json.dumps(value)),
    }


# Decoding ------------------------------------------------------------------

@pytest.mark.parametrize(("data", "expected"), [
    ('"0.75"', 0.75),
    ('"3"', 3.0),
    ('"{\\"default\\": 0.5, \\"loss\\": 1.25}"', {"default": 0.5, "loss": 1.25}),
    ('"Infinity"', math.inf),
    ('"-Infinity"', -math.inf),
    ('"\\"text\\""', "text"),
    ("not json", "not json"),
])
def test_decode_metric_values(data, expected):
    assert decode_metric(data) == expected


def test_decode_metric_nan():
    value = decode_metric('"NaN"')

    assert isinstance(value, float)
    assert math.isnan(value)


def test_decode_metric_nan_inside_dict():
    value = decode_metric('"{\\"default\\": NaN, \\"loss\\": Infinity}"')

    assert math.isnan(value["default"])
    assert value["loss"] == math.inf
    assert math.isnan(metric_value(value))


def test_metric_value_of_each_kind():
    assert metric_value(0.5) == 0.5
    assert metric_value({"default": 2, "loss": 1}) == 2.0
    assert metric_value({"loss": 1}) is None
    assert metric_value("text") is None
    assert metric_value(None) is None


# Joining parameters -------------------------------------------------------

def test_parameters_join_through_metric_parameter_id():
    """NNI 3.0 swapped the records of two trials, and the metrics' parameter ids tell them apart."""
    jobs = [
        _job("nQN01", 2, 2, {"kind": "nan"}),
        _job("ZDp8f", 3, 3, {"kind": "inf"}),
    ]
    metrics = [
        _metric("nQN01", 3, math.inf),
        _metric("ZDp8f", 2, math.nan),
    ]

    trials = {t.id: t for t in build_trials(jobs, metrics)}

    assert trials["nQN01"].parameters == {"kind": "inf"}
    assert trials["nQN01"].parameter_id == 3
    assert trials["nQN01"].parameters_mismatch == {"kind": "nan"}
    assert trials["nQN01"].parameters_source == "metric"
    assert trials["ZDp8f"].parameters == {"kind": "nan"}
    assert trials["ZDp8f"].parameters_mismatch == {"kind": "inf"}


def test_parameters_agree_without_mismatch():
    trials = build_trials([_job("a", 0, 0, {"x": 1})], [_metric("a", 0, 0.5)])

    assert trials[0].parameters == {"x": 1}
    assert trials[0].parameters_mismatch is None
    assert trials[0].parameters_source == "metric"


def test_trial_without_metrics_uses_record():
    trials = build_trials([_job("a", 0, 0, {"x": 1}, status="FAILED")], [])

    assert trials[0].parameters == {"x": 1}
    assert trials[0].parameters_source == "record"
    assert trials[0].final_metric is None
    assert trials[0].intermediate_metrics == []


def test_intermediate_metrics_sorted_by_sequence():
    """NNI returned sequence 2 before sequence 1 in a real run; the order follows the sequence number."""
    metrics = [
        _metric("a", 0, 0.1, "PERIODICAL", 0, timestamp=10),
        _metric("a", 0, 0.3, "PERIODICAL", 2, timestamp=12),
        _metric("a", 0, 0.2, "PERIODICAL", 1, timestamp=13),
        _metric("a", 0, 0.4, "FINAL", 0, timestamp=14),
    ]

    trial = build_trials([_job("a", 0, 0, {"x": 1})], metrics)[0]

    assert trial.intermediate_metrics == [0.1, 0.2, 0.3]
    assert trial.final_metric == 0.4


def test_trials_ordered_and_timed():
    jobs = [_job("b", 1, 1, {"x": 2}, start=2000, end=3500), _job("a", 0, 0, {"x": 1}, start=1000, end=1500)]

    trials = build_trials(jobs, [])

    assert [t.id for t in trials] == ["a", "b"]
    assert trials[1].start_time == 2.0
    assert trials[1].end_time == 3.5
    assert trials[1].duration == 1.5


# The experiment ------------------------------------------------------------

def _result(values, optimize_mode="maximize"):
    trials = [Trial(id=f"t{i}", status="SUCCEEDED", final_metric=value) for i, value in enumerate(values)]
    return ExperimentResult(id="exp", status="DONE", trials=trials, optimize_mode=optimize_mode)


def test_best_trial_by_optimize_mode():
    values = [0.5, {"default": 0.9, "loss": 3.0}, 0.1]

    assert _result(values).best_trial.id == "t1"
    assert _result(values, "minimize").best_trial.id == "t2"


def test_nan_never_best():
    assert _result([math.nan, 0.2, math.nan]).best_trial.id == "t1"
    assert _result([math.nan, 0.2], "minimize").best_metric == 0.2
    assert _result([math.nan, {"default": math.nan}]).best_trial is None


def test_counts_succeeded_and_failed():
    result = _result([0.1, 0.2])
    result.trials.append(Trial(id="t2", status="FAILED"))
    result.trials.append(Trial(id="t3", status="EARLY_STOPPED"))

    assert result.counts == {"SUCCEEDED": 2, "FAILED": 1, "EARLY_STOPPED": 1}
    assert [t.id for t in result.succeeded] == ["t0", "t1"]
    assert [t.id for t in result.failed] == ["t2", "t3"]


def _same(left, right):
    """Compare decoded values, NaN equal to NaN."""
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right))
    return left == right


def test_json_round_trip_keeps_nan_and_inf(tmp_path):
    result = _result([math.nan, math.inf, -math.inf, {"default": 0.5, "loss": math.nan}])
    result.trials[0].intermediate_metrics = [0.1, math.nan, math.inf]
    result.config = {"searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}}}
    path = tmp_path / "result.json"

    text = result.to_json(path)
    loaded = ExperimentResult.from_json(path)

    assert "NaN" in text
    assert "Infinity" in text
    assert json.loads(text)["summary"]["best_trial"] == "t1"
    assert _same([t.final_metric for t in loaded.trials], [t.final_metric for t in result.trials])
    assert _same(loaded.trials[0].intermediate_metrics, [0.1, math.nan, math.inf])
    assert loaded.best_trial.id == "t1"
    assert loaded.config == result.config
    assert _same(ExperimentResult.from_json(text).to_dict(), result.to_dict())


def test_trial_lookup_names_known_ids():
    result = _result([0.1])

    assert result.trial("t0").final_metric == 0.1
    with pytest.raises(KeyError, match="t0"):
        result.trial("missing")


# Real NNI ---------------------------------------------------------------------

@pytest.mark.nni_docker(timeout=300)
def test_real_metric_kinds_decode(nni_experiment, tmp_path):
    """Trials report a float, a dict with default, NaN, +inf and -inf, each with intermediates."""
    result = nni_experiment.run(METRIC_KINDS)

    assert result.status in ("DONE", "TUNER_NO_MORE_TRIAL", "NO_MORE_TRIAL")
    assert result.counts == {"SUCCEEDED": 5}, [(t.id, t.status, t.stderr[-300:]) for t in result.trials]
    by_kind = {t.parameters["kind"]: t for t in result.trials}
    assert sorted(by_kind) == ["dict", "float", "inf", "nan", "neginf"]
    for kind, trial in by_kind.items():
        assert f"reporting kind {kind}" in trial.trial_log + trial.stdout, (trial.id, kind)

    assert by_kind["float"].final_metric == 0.75
    assert by_kind["float"].intermediate_metrics == [0.25, 0.5, 0.75]

    assert by_kind["dict"].final_metric == {"default": 0.5, "loss": 1.25}
    assert by_kind["dict"].final_value == 0.5
    assert [m["loss"] for m in by_kind["dict"].intermediate_metrics] == [1.0, 0.0, -1.0]
    assert by_kind["dict"].intermediate_values == pytest.approx([0.1, 0.2, 0.3])

    assert math.isnan(by_kind["nan"].final_metric)
    assert all(math.isnan(v) for v in by_kind["nan"].intermediate_metrics)
    assert len(by_kind["nan"].intermediate_metrics) == 3
    assert by_kind["inf"].final_metric == math.inf
    assert by_kind["inf"].intermediate_metrics == [math.inf] * 3
    assert by_kind["neginf"].final_metric == -math.inf

    # GridSearch maximizes by default; +inf is a number and wins, NaN never does.
    assert result.best_trial is by_kind["inf"]
    assert result.nni_version.startswith("3.0")
    assert result.mode == "local"
    assert result.config["searchSpace"]["kind"]["_type"] == "choice"
    assert result.duration is not None and result.duration > 0
    for trial in result.trials:
        assert trial.worker and trial.worker.endswith("-manager")
        assert trial.start_time <= trial.end_time
        assert result.start_time <= trial.start_time

    loaded = ExperimentResult.from_json(result.to_json(tmp_path / "real.json"))
    assert _same(loaded.to_dict(), result.to_dict())


def _load_score():
    spec = importlib.util.spec_from_file_location("all_types_score", DATA / "all_types" / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score


@pytest.mark.nni_docker(nni_version="3.0", timeout=300)
def test_real_parameters_are_the_used_ones(nni_experiment):
    """NNI 3.0 at concurrency 4: every trial's final metric is score(trial.parameters)."""
    score = _load_score()

    result = nni_experiment.run(ALL_TYPES)

    result.assert_all_succeeded(minimum=8)
    result.assert_final_metric_matches(score)
    result.assert_parameters_in_search_space()
    for trial in result.trials:
        printed = re.search(r"parameters (\{.*\})$", trial.trial_log + "\n" + trial.stdout, re.MULTILINE)
        assert printed, (trial.id, trial.trial_log[-500:], trial.stdout[-500:])
        assert json.loads(printed.group(1)) == trial.parameters, trial.id
        assert trial.parameters_source == "metric"
        assert trial.intermediate_values == pytest.approx([trial.final_value * step for step in (1, 2, 3)])
    mismatched = [t.id for t in result.trials if t.parameters_mismatch is not None]
    print(f"trials whose NNI record had other parameters: {mismatched}")
