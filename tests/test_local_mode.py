"""Local mode against real Docker and real NNI: the values a test receives are right."""

import math
from pathlib import Path

import docker
import pytest

from pytest_nni_docker.engine import LABEL_PLUGIN, LABEL_TEST

DATA = Path(__file__).parent / "data"
KNOWN_FUNCTION = DATA / "known_function" / "config.yml"


def max_overlap(trials):
    """Return the largest number of trials that ran at the same moment."""
    events = []
    for trial in trials:
        events.append((trial.start_time, 1))
        events.append((trial.end_time, -1))
    running = peak = 0
    for _, change in sorted(events, key=lambda event: (event[0], event[1])):
        running += change
        peak = max(peak, running)
    return peak


@pytest.mark.nni_docker(timeout=300)
@pytest.mark.parametrize("concurrency", [2, 4])
def test_metrics_match_parameters(nni_experiment, concurrency):
    trials_wanted = 2 * concurrency
    result = nni_experiment.run(KNOWN_FUNCTION, trialConcurrency=concurrency, maxTrialNumber=trials_wanted)

    assert result.status == "DONE"
    assert len(result.trials) == trials_wanted
    assert len(result.succeeded) == trials_wanted
    assert len({t.parameter_id for t in result.trials}) == trials_wanted
    for trial in result.trials:
        x, y = trial.parameters["x"], trial.parameters["y"]
        assert math.isclose(trial.final_metric, 10 * x + y), (trial.id, trial.parameters, trial.final_metric)
        assert trial.intermediate_metrics == [0.0, float(x), float(2 * x)], trial.id
        assert "parameters" in trial.trial_log + trial.stdout
    assert 1 < max_overlap(result.trials) <= concurrency


@pytest.mark.nni_docker(timeout=300)
def test_dict_config_resolves_against_test_folder(nni_experiment):
    config = {
        "searchSpace": {"x": {"_type": "choice", "_value": [1, 2]}, "y": {"_type": "choice", "_value": [0.5]}},
        "trialCommand": "python3 trial.py",
        "trialCodeDirectory": "data/known_function",
        "trialConcurrency": 2,
        "maxTrialNumber": 2,
        "tuner": {"name": "Random"},
    }
    result = nni_experiment.run(config)

    assert [t.status for t in result.trials] == ["SUCCEEDED", "SUCCEEDED"]
    for trial in result.trials:
        assert trial.final_metric == 10 * trial.parameters["x"] + 0.5
    assert result.best_trial.final_metric == max(t.final_metric for t in result.trials)


@pytest.mark.nni_docker(timeout=300)
def test_trial_code_folder_is_not_modified(nni_experiment, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text((DATA / "known_function" / "trial.py").read_text())
    (code / "config.yml").write_text(KNOWN_FUNCTION.read_text().replace("maxTrialNumber: 4", "maxTrialNumber: 2"))
    before = sorted((p.relative_to(code), p.stat().st_mtime_ns) for p in code.rglob("*"))

    result = nni_experiment.run(code / "config.yml")

    assert len(result.succeeded) == 2
    assert sorted((p.relative_to(code), p.stat().st_mtime_ns) for p in code.rglob("*")) == before


def _containers_of_test(test_name):
    client = docker.from_env()
    try:
        return client.containers.list(all=True, filters={"label": [LABEL_PLUGIN, f"{LABEL_TEST}={test_name}"]})
    finally:
        client.close()


@pytest.mark.parametrize("outcome", ["passes", "fails"])
def test_nothing_left_after_run(pytester, outcome):
    """A run that passes and one whose assertion fails both remove their containers."""
    code = pytester.mkdir("code")
    (code / "trial.py").write_text((DATA / "known_function" / "trial.py").read_text())
    (code / "config.yml").write_text(KNOWN_FUNCTION.read_text().replace("maxTrialNumber: 4", "maxTrialNumber: 2"))
    test_name = f"test_left_behind_{outcome}"
    pytester.makepyfile(**{test_name: f"""
        import pytest

        @pytest.mark.nni_docker(timeout=300)
        def test_run(nni_experiment):
            result = nni_experiment.run("code/config.yml")
            assert len(result.succeeded) == 2
            assert {outcome == "passes"!r}, "failing on purpose"
    """})

    run = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    if outcome == "passes":
        run.assert_outcomes(passed=1)
    else:
        run.assert_outcomes(failed=1)
    assert _containers_of_test(f"{test_name}.py::test_run") == []
