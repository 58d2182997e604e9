"""Assertion helpers: they pass on good results and fail with the numbers behind them."""

import math

import pytest

from pytest_nni_docker.assertions import (
    assert_all_succeeded,
    assert_best_metric,
    assert_final_metric_matches,
    assert_intermediate_monotone,
    assert_parameters_in_search_space,
    check_parameters,
    check_value,
)
from pytest_nni_docker.results import ExperimentResult, Trial


def _result(*trials, optimize_mode="maximize", search_space=None):
    return ExperimentResult(
        id="exp1", status="DONE", trials=list(trials), optimize_mode=optimize_mode,
        config={"searchSpace": search_space} if search_space is not None else {},
    )


def _trial(trial_id, final=None, intermediate=(), status="SUCCEEDED", **parameters):
    return Trial(id=trial_id, status=status, parameters=parameters, final_metric=final,
                 intermediate_metrics=list(intermediate))


# All succeeded -----------------------------------------------------------

def test_all_succeeded_passes():
    assert_all_succeeded(_result(_trial("a", 0.1), _trial("b", 0.2)), minimum=2)


def test_all_succeeded_names_failed_trial_and_stderr():
    failed = _trial("b", status="FAILED", lr=0.5)
    failed.stderr = "Traceback (most recent call last):\nValueError: lr too large\n"

    with pytest.raises(AssertionError) as error:
        _result(_trial("a", 0.1), failed).assert_all_succeeded()

    message = str(error.value)
    assert "1 of 2 trials of experiment exp1 did not succeed" in message
    assert 'trial b (FAILED, parameters {"lr": 0.5})' in message
    assert "ValueError: lr too large" in message


def test_all_succeeded_checks_minimum():
    with pytest.raises(AssertionError, match="ran 1 trials, expected at least 3"):
        assert_all_succeeded(_result(_trial("a", 0.1)), minimum=3)


# Best metric -------------------------------------------------------------

def test_best_metric_reaches_threshold_by_mode():
    assert_best_metric(_result(_trial("a", 0.5), _trial("b", 0.97)), 0.95)
    assert_best_metric(_result(_trial("a", 0.5), _trial("b", 0.03), optimize_mode="minimize"), 0.05)


def test_best_metric_below_threshold_shows_values():
    result = _result(_trial("a", 0.91, x=1), _trial("b", {"default": 0.93, "loss": 0.2}, x=2), _trial("c", math.nan))

    with pytest.raises(AssertionError) as error:
        result.assert_best_metric(0.95)

    message = str(error.value)
    assert "Best final metric 0.93 of trial b" in message
    assert "below the threshold 0.95 (maximize)" in message
    assert "[0.91, 0.93, nan]" in message


def test_best_metric_minimize_above_threshold():
    with pytest.raises(AssertionError, match=r"0\.2 of trial a .* above the threshold 0\.1 \(minimize\)"):
        assert_best_metric(_result(_trial("a", 0.2), _trial("b", 0.4), optimize_mode="minimize"), 0.1)


def test_best_metric_bounds():
    result = _result(_trial("a", 0.5))

    assert_best_metric(result, at_least=0.4, at_most=0.6)
    with pytest.raises(AssertionError, match="above at_most=0.45"):
        assert_best_metric(result, at_most=0.45)


def test_best_metric_without_numbers():
    with pytest.raises(AssertionError, match="No trial reported a final metric that is a number"):
        assert_best_metric(_result(_trial("a", math.nan), _trial("b", status="FAILED")), 0.5)


def test_best_metric_needs_a_bound():
    with pytest.raises(TypeError):
        assert_best_metric(_result(_trial("a", 0.5)))


# Monotone curves -------------------------------------------------------------

def test_monotone_passes_with_equal_steps():
    result = _result(_trial("a", intermediate=[0.1, 0.2, 0.2, 0.5]), _trial("b", intermediate=[0.3]))

    assert_intermediate_monotone(result, "increasing")


def test_monotone_fails_with_curve_and_step():
    result = _result(_trial("a", intermediate=[0.1, 0.2, 0.3]), _trial("b", intermediate=[0.4, 0.35, 0.5], lr=0.1))

    with pytest.raises(AssertionError) as error:
        result.assert_intermediate_monotone("increasing")

    message = str(error.value)
    assert "1 of 2 intermediate curves of experiment exp1 are not increasing" in message
    assert "[0.4, 0.35, 0.5]" in message
    assert "step 0 -> 1: 0.4 -> 0.35" in message


def test_monotone_strict_rejects_plateau():
    result = _result(_trial("a", intermediate=[3.0, 2.0, 2.0]))

    assert_intermediate_monotone(result, "decreasing")
    with pytest.raises(AssertionError, match=r"strictly decreasing:(.|\n)*step 1 -> 2: 2 -> 2"):
        assert_intermediate_monotone(result, "decreasing", strict=True)


def test_monotone_tolerance_and_dict_metrics():
    result = _result(_trial("a", intermediate=[{"default": 0.5}, {"default": 0.499}, {"default": 0.7}]))

    assert_intermediate_monotone(result, tolerance=0.01)
    with pytest.raises(AssertionError):
        assert_intermediate_monotone(result)


def test_monotone_rejects_nan():
    with pytest.raises(AssertionError, match="step 1 is nan, not a number"):
        assert_intermediate_monotone(_result(_trial("a", intermediate=[0.1, math.nan, 0.3])))


def test_monotone_rejects_unknown_direction():
    with pytest.raises(ValueError, match="direction"):
        assert_intermediate_monotone(_result(), "up")


# Search space ----------------------------------------------------------------

@pytest.mark.parametrize(("spec", "inside", "outside"), [
    ({"_type": "choice", "_value": ["sgd", "adam"]}, ["sgd", "adam"], ["rmsprop", 1]),
    ({"_type": "choice", "_value": [1, 2.5]}, [1, 2.5], [2, "1"]),
    ({"_type": "randint", "_value": [1, 5]}, [1, 4, 3.0], [0, 5, 2.5, "3"]),
    ({"_type": "uniform", "_value": [0.1, 0.5]}, [0.1, 0.3, 0.5], [0.05, 0.51, math.nan]),
    ({"_type": "quniform", "_value": [10, 130, 16]}, [10, 16, 128, 130], [20, 144, 0]),
    ({"_type": "loguniform", "_value": [0.0001, 0.1]}, [0.0001, 0.01, 0.1], [0.2, 0.0]),
    ({"_type": "qloguniform", "_value": [8, 256, 8]}, [8.0, 24.0, 256.0], [12, 264, 4]),
    ({"_type": "normal", "_value": [0, 1]}, [-3.5, 0.0, 12.0], [math.inf, "x"]),
    ({"_type": "qnormal", "_value": [0, 2, 0.5]}, [-4.0, 0.0, 1.5], [0.3, 1.2]),
    ({"_type": "lognormal", "_value": [0, 0.5]}, [0.01, 3.4], [0.0, -1.0]),
    ({"_type": "qlognormal", "_value": [2, 0.5, 1]}, [0.0, 5.0, 22.0], [5.5, -1.0]),
    ({"_type": "quniform", "_value": [0, 1, 0.1]}, [0.30000000000000004, 0.7000000000000001], [0.35]),
])
def test_check_value_by_type(spec, inside, outside):
    for value in inside:
        assert check_value(spec, value) == [], (spec, value)
    for value in outside:
        assert check_value(spec, value), (spec, value)


def test_check_value_unknown_type():
    assert check_value({"_type": "mutable_layer", "_value": []}, 1) == [
        "has the search space type 'mutable_layer', which this check does not know"
    ]


NESTED = {
    "block": {"_type": "choice", "_value": [
        {"_name": "conv", "kernel": {"_type": "choice", "_value": [3, 5]}},
        {"_name": "pool"},
    ]},
    "lr": {"_type": "loguniform", "_value": [0.001, 0.1]},
}


def test_check_parameters_nested_choice():
    assert check_parameters(NESTED, {"block": {"_name": "conv", "kernel": 5}, "lr": 0.01}) == []
    assert check_parameters(NESTED, {"block": {"_name": "pool"}, "lr": 0.01}) == []
    assert check_parameters(NESTED, {"block": {"_name": "conv", "kernel": 4}, "lr": 0.01}) == [
        "block[conv].kernel=4 is not one of the choices [3, 5]"
    ]
    assert check_parameters(NESTED, {"block": {"_name": "dense"}, "lr": 0.01}) == [
        "block._name='dense' is not one of ['conv', 'pool']"
    ]
    assert check_parameters(NESTED, {"block": "conv", "lr": 0.01}) == [
        "block='conv' is not a dict with _name, as the nested choice of ['conv', 'pool'] gives"
    ]


def test_check_parameters_missing_and_extra():
    assert check_parameters(NESTED, {"lr": 0.01, "momentum": 0.9}) == [
        "block is missing",
        "momentum=0.9 is not in the search space",
    ]


def test_parameters_in_search_space_uses_config():
    space = {"lr": {"_type": "uniform", "_value": [0.1, 0.5]}, "layers": {"_type": "randint", "_value": [1, 4]}}
    good = _trial("a", 0.1, lr=0.2, layers=3)
    bad = _trial("b", 0.2, lr=0.7, layers=4)
    waiting = _trial("c", status="WAITING")

    _result(good, waiting, search_space=space).assert_parameters_in_search_space()
    with pytest.raises(AssertionError) as error:
        _result(good, bad, waiting, search_space=space).assert_parameters_in_search_space()

    message = str(error.value)
    assert "1 of 2 trials of experiment exp1 have parameters outside the search space" in message
    assert "trial b: lr=0.7 is outside uniform's range [0.1, 0.5]; layers=4 is outside randint's range [1, 4)" in message


def test_parameters_in_search_space_needs_space():
    with pytest.raises(ValueError, match="no searchSpace"):
        assert_parameters_in_search_space(_result(_trial("a", 0.1, x=1)))


# Known function ------------------------------------------------------------------

def test_final_metric_matches_function():
    result = _result(_trial("a", 21.5, x=2, y=1.5), _trial("b", {"default": 30.0}, x=3, y=0.0))

    assert_final_metric_matches(result, lambda p: 10 * p["x"] + p["y"])


def test_final_metric_mismatch_shows_record():
    wrong = _trial("b", 99.0, x=3, y=0.0)
    wrong.parameters_mismatch = {"x": 9, "y": 9.0}

    with pytest.raises(AssertionError) as error:
        _result(_trial("a", 21.5, x=2, y=1.5), wrong).assert_final_metric_matches(lambda p: 10 * p["x"] + p["y"])

    message = str(error.value)
    assert "1 of 2 succeeded trials" in message
    assert "final metric 99, expected 30" in message
    assert 'NNI\'s trial record had parameters {"x": 9, "y": 9.0}' in message


def test_final_metric_matches_needs_succeeded_trial():
    with pytest.raises(AssertionError, match="no succeeded trial"):
        assert_final_metric_matches(_result(_trial("a", status="FAILED", x=1)), lambda p: p["x"])
