"""The benchmark experiment through the plugin: a pytest session in a subprocess.

``run_plugin`` writes a test file whose tests each run the benchmark experiment
with the ``nni_experiment`` fixture. Its conftest.py measures each test from the
start of its setup to the end of its teardown and copies the runner's step
timings (``RunRecord.timings``). It also records the peak memory of the pytest
process. ``run_plugin`` runs pytest on them and returns what it measured.

Run alone from the repository root: ``python -m benchmarks.plugin_run [--reuse] [--remote]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

EXPERIMENT_CONFIG = Path(__file__).resolve().parent / "experiment" / "config.yml"

_CONFTEST = '''
"""Measures each test of the benchmark session and writes the numbers to $BENCHMARK_OUTPUT."""

import json
import os
import resource
import time

import pytest

from pytest_nni_docker.plugin import records_key

TESTS = {}


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    TESTS[item.nodeid] = {"started": time.perf_counter()}
    yield


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    entry = TESTS[item.nodeid]
    entry["test"] = time.perf_counter() - entry.pop("started")
    entry["runs"] = [dict(record.timings) for record in item.stash.get(records_key, [])]


def pytest_sessionfinish(session, exitstatus):
    # ru_maxrss is in KiB on Linux.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(os.environ["BENCHMARK_OUTPUT"], "w") as output:
        json.dump({"tests": TESTS, "peak_rss_mib": peak, "exitstatus": int(exitstatus)}, output)
'''

_TEST = '''
import pytest

CONFIG = {config!r}


@pytest.mark.nni_docker(timeout=600{marker})
@pytest.mark.parametrize("number", range({tests}))
def test_experiment(nni_experiment, number):
    result = nni_experiment.run(CONFIG, maxTrialNumber={trials}{overrides})
    assert result.status == "DONE"
    assert len(result.succeeded) == {trials}
'''


def run_plugin(tests: int = 1, trials: int = 8, reuse: bool = False, extra_args: tuple[str, ...] = (),
               mode: str = "local") -> dict:
    """Run a pytest session of ``tests`` tests, each running the benchmark experiment with ``trials`` trials.

    With ``mode="remote"`` each test runs it on a pool of 2 SSH workers.

    Returns ``tests`` (per test: ``test`` seconds and the ``runs`` step
    timings), ``peak_rss_mib`` of the pytest process, and ``process`` (seconds
    from the pytest subprocess start to its exit). Raises ``RuntimeError`` with
    pytest's output when a test fails.
    """
    with tempfile.TemporaryDirectory(prefix="pytest-nni-docker-benchmark-") as folder:
        root = Path(folder)
        (root / "conftest.py").write_text(_CONFTEST)
        (root / "test_benchmark.py").write_text(textwrap.dedent(_TEST).format(
            config=str(EXPERIMENT_CONFIG), tests=tests, trials=trials,
            marker=', mode="remote", workers=2' if mode == "remote" else "",
            overrides=', trainingService={"platform": "remote"}' if mode == "remote" else ""))
        output = root / "timings.json"
        environment = {**os.environ, "BENCHMARK_OUTPUT": str(output), "TESTCONTAINERS_RYUK_DISABLED": "true"}
        command = [sys.executable, "-m", "pytest", str(root), "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                   "--nni-require-docker", "--nni-no-pull", *(["--nni-reuse-manager"] if reuse else []), *extra_args]

        started = time.perf_counter()
        completed = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True)
        process = time.perf_counter() - started

        if completed.returncode != 0 or not output.exists():
            raise RuntimeError(f"The plugin run failed (exit {completed.returncode}):\n{completed.stdout[-4000:]}\n{completed.stderr[-2000:]}")
        measured = json.loads(output.read_text())
    measured["process"] = process
    return measured


if __name__ == "__main__":
    print(json.dumps(run_plugin(reuse="--reuse" in sys.argv, mode="remote" if "--remote" in sys.argv else "local"), indent=2))
