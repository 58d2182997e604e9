"""End states of an experiment, each with real NNI in Docker, and the message a user gets.

Only the REST faults that a real manager cannot be made to produce (HTTP 500 on
every request, a REST API that never comes up) use a fake server, and those
tests say so in their names.
"""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import docker
import pytest

from pytest_nni_docker import experiment
from pytest_nni_docker.config import prepare_experiment
from pytest_nni_docker.engine import LABEL_PLUGIN, LABEL_ROLE, LABEL_TEST
from pytest_nni_docker.errors import ExperimentFailed
from pytest_nni_docker.experiment import ExperimentRunner, RunOptions
from pytest_nni_docker.rest import NniRestClient

CASES = Path(__file__).parent / "cases"


def config(**changes):
    """Return a dict config of two quick trials on the trial code in tests/cases; ``changes`` replace keys."""
    base = {
        "trialCodeDirectory": "cases",
        "trialCommand": "python3 quick_trial.py",
        "trialConcurrency": 2,
        "maxTrialNumber": 2,
        "searchSpace": {"x": {"_type": "choice", "_value": [0.2, 0.8]}},
        "tuner": {"name": "Random"},
    }
    base.update(changes)
    return base


def show(error: ExperimentFailed) -> str:
    """Print the message a user gets (visible with -s) and return it."""
    message = str(error)
    print(f"\n[{error.reason}] {message}")
    return message


@pytest.mark.nni_docker(timeout=300)
def test_done_when_every_trial_failed(nni_experiment):
    """NNI finishes even when every trial failed, and the result shows each failure.

    NNI reports NO_MORE_TRIAL with no trial left to run shortly before DONE. A
    poll that comes in between ends the run there, which CI saw once.
    """
    space = {"x": {"_type": "choice", "_value": [0.2, 0.8]}, "fail": {"_type": "choice", "_value": [True]}}

    result = nni_experiment.run(config(searchSpace=space))

    assert (result.status, result.end_reason) in {("DONE", "done"), ("NO_MORE_TRIAL", "no_more_trial")}
    assert len(result.failed) == 2
    assert result.succeeded == []
    for trial in result.failed:
        assert trial.status == "FAILED"
        assert "quick_trial: failing on purpose" in trial.stderr
    # NNI 3.0 can attach another trial's parameters to a trial record, so the
    # values are compared as a set, not trial by trial.
    assert {t.stderr.strip().rsplit("x=", 1)[1] for t in result.failed} == {"0.2", "0.8"}


@pytest.mark.nni_docker(timeout=300, no_progress_timeout=60)
def test_grid_smaller_than_max_trials_finishes(nni_experiment):
    """A grid of 2 points with maxTrialNumber 10 ends in TUNER_NO_MORE_TRIAL, which NNI never leaves."""
    result = nni_experiment.run(config(maxTrialNumber=10, tuner={"name": "GridSearch"}))

    assert result.status == "TUNER_NO_MORE_TRIAL"
    assert result.end_reason == "tuner_no_more_trial"
    assert len(result.succeeded) == 2
    assert sorted(t.parameters["x"] for t in result.trials) == [0.2, 0.8]


@pytest.mark.nni_docker(timeout=300)
def test_error_status_fails_with_nni_message(nni_experiment):
    """A tuner that starts slower than NNI waits for it makes NNI report ERROR."""
    tuner = {"codeDirectory": "cases/tuners", "className": "crash_tuner.SlowStartTuner"}

    started = time.monotonic()
    with pytest.raises(ExperimentFailed) as caught:
        nni_experiment.run(config(tuner=tuner))
    elapsed = time.monotonic() - started

    message = show(caught.value)
    assert caught.value.reason == "error"
    assert message.startswith("NNI reported ERROR: ")
    assert "Tuner did not connect in 10 seconds" in message
    assert "not of a trial" in message
    assert "status ERROR" in caught.value.evidence["experiment"]
    assert elapsed < 120


@pytest.mark.nni_docker(timeout=300)
def test_crashed_tuner_fails_within_seconds(nni_experiment):
    """NNI stays RUNNING after a tuner raises; the plugin reads dispatcher.log and fails at once."""
    tuner = {"codeDirectory": "cases/tuners", "className": "crash_tuner.CrashTuner"}

    started = time.monotonic()
    with pytest.raises(ExperimentFailed) as caught:
        nni_experiment.run(config(tuner=tuner))
    elapsed = time.monotonic() - started

    message = show(caught.value)
    assert caught.value.reason == "dispatcher_failed"
    assert "RuntimeError: CrashTuner fails on purpose in generate_parameters" in message
    assert "not of a trial" in message
    assert "Traceback" in caught.value.evidence["dispatcher.log (tail)"]
    assert elapsed < 60


def _kill_manager_process(test_name: str, after: float, outcome: list[str]) -> None:
    """Wait for the test's manager container, let it run ``after`` seconds, then kill NNI's node process in it."""
    client = docker.from_env()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = client.containers.list(filters={"label": [LABEL_PLUGIN, f"{LABEL_TEST}={test_name}", f"{LABEL_ROLE}=manager"]})
            if found:
                # The image has no pgrep or ps, so the shell reads /proc.
                _, output = found[0].exec_run(["sh", "-c", (
                    "for p in /proc/[0-9]*; do grep -q nni_node/main.js $p/cmdline 2>/dev/null && [ ${p#/proc/} != $$ ] && echo ${p#/proc/}; done")])
                pids = output.decode().split()
                if pids:
                    time.sleep(after)
                    found[0].exec_run(["sh", "-c", "kill -9 " + " ".join(pids)])
                    outcome.append(" ".join(pids))
                    return
            time.sleep(0.5)
    finally:
        client.close()


@pytest.mark.nni_docker(timeout=300)
def test_killed_manager_fails_as_manager_died(nni_experiment, request):
    killed: list[str] = []
    killer = threading.Thread(target=_kill_manager_process, args=(request.node.nodeid, 6.0, killed), daemon=True)
    killer.start()

    with pytest.raises(ExperimentFailed) as caught:
        nni_experiment.run(config(trialCommand="python3 silent_trial.py"))
    killer.join(timeout=10)

    message = show(caught.value)
    assert killed, "the manager's node process was never found"
    assert caught.value.reason == "manager_died"
    partial = caught.value.result
    assert partial is not None
    assert partial.end_reason == "manager_died"
    assert partial.id
    assert partial.trials == []
    assert "NNI manager" in partial.manager_log
    assert "stopped responding" in message
    assert "the manager process died" in message
    assert "Last lines of nnimanager.log:" in message
    assert "Start NNI manager" in caught.value.evidence["nnimanager.log (tail)"]


@pytest.mark.nni_docker(timeout=300, no_progress_timeout=5)
def test_silent_trials_fail_after_no_progress_period(nni_experiment):
    started = time.monotonic()
    with pytest.raises(ExperimentFailed) as caught:
        nni_experiment.run(config(trialCommand="python3 silent_trial.py"))
    elapsed = time.monotonic() - started

    message = show(caught.value)
    assert caught.value.reason == "no_progress"
    assert message.startswith("No progress for 5 s: the experiment stayed ")
    assert "RUNNING 2" in message
    assert "no_progress_timeout" in message
    assert elapsed < 120


@pytest.mark.nni_docker(timeout=15, no_progress_timeout=60)
def test_overall_timeout_fails_with_timeout(nni_experiment):
    """Trials that report a metric every half second never stall, so only the timeout ends them."""
    started = time.monotonic()
    with pytest.raises(ExperimentFailed) as caught:
        nni_experiment.run(config(trialCommand="python3 chatty_trial.py"))
    elapsed = time.monotonic() - started

    message = show(caught.value)
    assert caught.value.reason == "timeout"
    assert message.startswith("Timed out after 15 s while the experiment was ")
    assert "--nni-timeout" in message
    assert elapsed < 40
    partial = caught.value.result
    assert partial is not None
    assert partial.end_reason == "timeout"
    assert len(partial.trials) == sum(partial.job_statistics.values())
    assert all(trial.status == "RUNNING" for trial in partial.trials)
    assert nni_experiment.results == [partial]


# Faults that a real manager cannot be made to produce ----------------------


class _Answers500(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        body = b'{"error": "fake failure of the REST handler"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _NoContainer:
    """The parts of a manager container that evidence collection reads, for a fake manager."""

    name = "fake-manager"

    def exec(self, command, **kwargs):
        return 1, ""

    def read_file(self, path, max_bytes=None):
        return ""

    def is_running(self):
        return True

    def logs(self):
        return ""


def _runner(**options) -> ExperimentRunner:
    return ExperimentRunner(engine=None, image="unused", nni_version="3.0", options=RunOptions(**options))


def test_fake_rest_500_is_rest_error():
    """Fake REST server: a real NNI manager does not return HTTP 500 to every request."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = NniRestClient("127.0.0.1", server.server_address[1])
    prepared = prepare_experiment(config(), base_dir=CASES.parent)
    try:
        with pytest.raises(ExperimentFailed) as caught:
            _runner(timeout=30, no_progress_timeout=30, unreachable_grace=1.0)._wait(_NoContainer(), client, prepared, time.time())
    finally:
        client.close()
        server.shutdown()
        server.server_close()

    message = show(caught.value)
    assert caught.value.reason == "rest_error"
    assert "kept failing REST requests" in message
    assert "HTTP 500" in message
    assert "fake failure of the REST handler" in message


def test_fake_closed_port_is_manager_died(monkeypatch):
    """Fake manager: a closed port stands for a REST API that never came up after nnictl create."""
    monkeypatch.setattr(experiment, "STARTUP_GRACE_SECONDS", 1.0)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers500)
    port = server.server_address[1]
    server.server_close()
    client = NniRestClient("127.0.0.1", port)
    prepared = prepare_experiment(config(), base_dir=CASES.parent)
    try:
        with pytest.raises(ExperimentFailed) as caught:
            _runner(timeout=30, no_progress_timeout=30)._wait(_NoContainer(), client, prepared, time.time())
    finally:
        client.close()

    message = show(caught.value)
    assert caught.value.reason == "manager_died"
    assert f"REST API on http://127.0.0.1:{port} never responded in 1 s after nnictl create" in message
