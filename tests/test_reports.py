"""What people see: the end-of-run table, the HTML report, JSON files and kept web UIs."""

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import docker
import pytest
import requests

from pytest_nni_docker.engine import LABEL_PLUGIN, LABEL_TEST
from pytest_nni_docker.html_report import nice_ticks, render, write_report
from pytest_nni_docker.reporting import SummaryRow, summary_lines
from pytest_nni_docker.results import ExperimentResult, Trial

DATA = Path(__file__).parent / "data"


def _result():
    trials = [
        Trial(id="aaa01", status="SUCCEEDED", parameters={"x": 1, "name": "<b>bold</b>"}, final_metric=0.5,
              intermediate_metrics=[0.1, 0.3, 0.5], start_time=100.0, end_time=101.5),
        Trial(id="bbb02", status="SUCCEEDED", parameters={"x": 2}, final_metric={"default": 0.9, "loss": 0.1},
              intermediate_metrics=[{"default": 0.2}, {"default": 0.9}], start_time=100.0, end_time=102.0,
              parameters_mismatch={"x": 3}),
        Trial(id="ccc03", status="SUCCEEDED", parameters={"x": 3}, final_metric=math.nan,
              intermediate_metrics=[math.nan, 0.4]),
        Trial(id="ddd04", status="SUCCEEDED", parameters={"x": 4}, final_metric=-math.inf),
        Trial(id="eee05", status="FAILED", parameters={"x": 5}, message="exit code 1"),
    ]
    return ExperimentResult(
        id="exp42", status="DONE", trials=trials, nni_version="3.0.0", start_time=100.0, end_time=112.25,
        config={"searchSpace": {"x": {"_type": "randint", "_value": [1, 6]}}},
    )


# Summary table --------------------------------------------------------------

def test_summary_row_json_round_trip():
    row = SummaryRow.of("tests/test_a.py::test_b", _result())

    assert SummaryRow.from_json(row.to_json()) == row
    assert row.best_metric == 0.9
    assert row.counts == {"SUCCEEDED": 4, "FAILED": 1}


def test_summary_lines_table():
    rows = [SummaryRow.of("tests/test_a.py::test_b", _result()),
            SummaryRow("tests/test_c.py::test_d", "exp2", "remote", "2.10.1", "DONE", {}, None, None)]

    lines = summary_lines(rows)

    assert lines[0].split() == ["test", "mode", "NNI", "trials", "by", "status", "best", "metric", "duration", "end", "state"]
    assert set(lines[1]) <= {"-", " "}
    assert re.search(r"test_a.py::test_b\s+local\s+3.0.0\s+FAILED 1, SUCCEEDED 4\s+0.9\s+12.2 s\s+-$", lines[2])
    assert re.search(r"test_c.py::test_d\s+remote\s+2.10.1\s+none\s+-\s+-\s+-$", lines[3])
    assert summary_lines([]) == []


# HTML report ----------------------------------------------------------------

class _Collector(HTMLParser):
    """Collects tags and their attributes, to check what a page would load."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_report_is_self_contained(tmp_path):
    page = write_report(_result(), tmp_path / "sub" / "report.html", test="tests/test_a.py::test_b").read_text()
    parser = _Collector()
    parser.feed(page)
    tags = [tag for tag, _ in parser.tags]

    assert "script" not in tags
    assert "link" not in tags
    assert "img" not in tags
    assert not [attrs for _, attrs in parser.tags if "src" in attrs or "href" in attrs]
    assert "@import" not in page
    assert "url(" not in page
    assert tags.count("svg") == 2


def test_html_report_shows_trials_and_values():
    page = render(_result(), test="tests/test_a.py::test_b")

    for trial_id in ("aaa01", "bbb02", "ccc03", "ddd04", "eee05"):
        assert trial_id in page
    assert "tests/test_a.py::test_b" in page
    assert "0.9 (trial bbb02), maximize" in page
    assert "NaN" in page
    assert "-inf" in page
    assert "NNI&#x27;s trial record had other parameters: {&quot;x&quot;: 3}" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>bold</b>" not in page
    assert "SUCCEEDED 4" in page


def test_html_report_without_metrics():
    result = ExperimentResult(id="empty", status="DONE", trials=[Trial(id="t", status="FAILED")])

    page = render(result)

    assert "No trial reported a final metric." in page
    assert "No trial reported intermediate metrics." in page


def test_nice_ticks_cover_range():
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.12, 0.93)[0] <= 0.12
    assert nice_ticks(0.12, 0.93)[-1] >= 0.9
    assert nice_ticks(5.0, 5.0) == [5.0]


# The pytest surface, with real NNI under pytest-xdist ------------------------

def _remove_containers_of(nodeids):
    client = docker.from_env()
    try:
        for nodeid in nodeids:
            selector = {"label": [LABEL_PLUGIN, f"{LABEL_TEST}={nodeid}"]}
            for container in client.containers.list(all=True, filters=selector):
                container.remove(force=True, v=True)
            for network in client.networks.list(filters=selector):
                network.remove()
    finally:
        client.close()


def test_xdist_run_reports_every_experiment(pytester):
    """Two tests on two xdist workers: the controller's table, files, HTML and kept web UI."""
    code = pytester.mkdir("code")
    for name in ("trial.py", "config.yml"):
        (code / name).write_text((DATA / "known_function" / name).read_text().replace("maxTrialNumber: 4", "maxTrialNumber: 2"))
    pytester.makepyfile(test_report_outputs="""
        import pytest

        @pytest.mark.nni_docker(timeout=300)
        def test_passes(nni_experiment):
            result = nni_experiment.run("code/config.yml")
            result.assert_all_succeeded(minimum=2)

        @pytest.mark.nni_docker(timeout=300)
        def test_fails_on_purpose(nni_experiment):
            result = nni_experiment.run("code/config.yml")
            result.assert_best_metric(at_least=1e9)
    """)
    nodeids = ["test_report_outputs.py::test_passes", "test_report_outputs.py::test_fails_on_purpose"]

    try:
        run = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-n", "2", "--nni-keep",
            "--nni-results-dir", "results", "--nni-html-report", "html",
        )
        output = run.stdout.str()

        run.assert_outcomes(passed=1, failed=1)
        assert "Best final metric" in output and "below at_least=1e+09" in output
        table = output[output.index("NNI experiments"):]
        for nodeid in nodeids:
            assert re.search(rf"{re.escape(nodeid)}\s+local\s+3\.0\.0\s+SUCCEEDED 2\s+\d", table), table

        kept = re.findall(r"test_fails_on_purpose: kept (\S+), web UI (http://127\.0\.0\.1:\d+)", output)
        assert len(kept) == 1, output[-3000:]
        assert "test_passes: kept" not in output
        status = requests.get(f"{kept[0][1]}/api/v1/nni/check-status", timeout=10,
                              proxies={"http": None, "https": None})
        assert status.status_code == 200

        results = sorted((pytester.path / "results").glob("*.json"))
        assert [p.name for p in results] == ["test_report_outputs.py_test_fails_on_purpose.json",
                                             "test_report_outputs.py_test_passes.json"]
        for path in results:
            loaded = ExperimentResult.from_json(path)
            assert len(loaded.succeeded) == 2
            assert json.loads(path.read_text())["summary"]["counts"] == {"SUCCEEDED": 2}

        pages = sorted((pytester.path / "html").glob("*.html"))
        assert [p.stem for p in pages] == [p.stem for p in results]
        assert all("<svg" in p.read_text() for p in pages)
    finally:
        _remove_containers_of(nodeids)
