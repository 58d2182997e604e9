"""Failed experiments still reach the summary table, the JSON files and the HTML reports."""

import re
from pathlib import Path

import docker

from pytest_nni_docker.engine import LABEL_PLUGIN, LABEL_TEST
from pytest_nni_docker.reporting import SummaryRow, summary_lines
from pytest_nni_docker.results import ExperimentResult, Trial

CASES = Path(__file__).parent / "cases"


def test_summary_row_shows_end_reason():
    result = ExperimentResult(id="exp7", status="RUNNING", trials=[Trial(id="t1", status="RUNNING")],
                              nni_version="3.0.0", end_reason="timeout")
    row = SummaryRow.of("tests/test_a.py::test_slow", result)

    lines = summary_lines([row])

    assert SummaryRow.from_json(row.to_json()) == row
    assert re.search(r"test_a.py::test_slow\s+local\s+3.0.0\s+RUNNING 1\s+-\s+-\s+timeout$", lines[2])


def test_summary_row_from_json_without_end_reason():
    """Rows written before the end reason was added still load."""
    text = ('{"best_metric": null, "counts": {}, "duration": null, "experiment_id": "e", "mode": "local", '
            '"nni_version": "3.0.0", "status": "DONE", "test": "t"}')

    assert SummaryRow.from_json(text).end_reason == ""


def _remove_containers_of(nodeid):
    client = docker.from_env()
    try:
        selector = {"label": [LABEL_PLUGIN, f"{LABEL_TEST}={nodeid}"]}
        for container in client.containers.list(all=True, filters=selector):
            container.remove(force=True, v=True)
    finally:
        client.close()


def test_timed_out_experiment_is_reported(pytester):
    """A real experiment that hits its timeout, under pytest-xdist: table row, JSON file and HTML page."""
    code = pytester.mkdir("code")
    (code / "chatty_trial.py").write_text((CASES / "chatty_trial.py").read_text())
    pytester.makepyfile(test_slow="""
        import pytest

        @pytest.mark.nni_docker(timeout=30, no_progress_timeout=60)
        def test_times_out(nni_experiment):
            nni_experiment.run({
                "trialCodeDirectory": "code",
                "trialCommand": "python3 chatty_trial.py",
                "trialConcurrency": 2,
                "maxTrialNumber": 2,
                "searchSpace": {"x": {"_type": "choice", "_value": [0.2, 0.8]}},
                "tuner": {"name": "Random"},
            })
    """)
    nodeid = "test_slow.py::test_times_out"

    try:
        run = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-n", "1", "--nni-results-dir", "results", "--nni-html-report", "html",
        )
    finally:
        _remove_containers_of(nodeid)
    output = run.stdout.str()

    run.assert_outcomes(failed=1)
    assert "Timed out after 30 s" in output
    assert "NNI experiments" in output, output[-3000:]
    table = output[output.index("NNI experiments"):]
    assert re.search(rf"{re.escape(nodeid)}\s+local\s+3\.0\.0\s+RUNNING \d\s+-\s+\d+\.\d s\s+timeout", table), table

    path = pytester.path / "results" / "test_slow.py_test_times_out.json"
    assert path.exists(), sorted(p.name for p in pytester.path.rglob("*.json"))
    loaded = ExperimentResult.from_json(path)
    assert loaded.end_reason == "timeout"
    assert loaded.status in ("RUNNING", "NO_MORE_TRIAL")
    assert loaded.id
    # The chatty trials never end, so each trial seen is still running.
    assert loaded.trials
    assert len(loaded.trials) == sum(loaded.job_statistics.values())
    assert all(trial.status == "RUNNING" for trial in loaded.trials)
    assert all(trial.intermediate_metrics for trial in loaded.trials)
    assert loaded.manager_log

    page = (pytester.path / "html" / "test_slow.py_test_times_out.html").read_text()
    assert "ended by timeout" in page
    for trial in loaded.trials:
        assert trial.id in page
