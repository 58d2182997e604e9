"""Cleanup however a run ends, kept containers, and the safe defaults of the containers.

Each check filters on the owner pid or test name of its own child run, because
other developers' runs use the same Docker daemon at the same time.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker
import pytest

from pytest_nni_docker.engine import KEPT_SUFFIX, LABEL_OWNER_PID, LABEL_PLUGIN, LABEL_TEST

CASES = Path(__file__).parent / "cases"

SLOW_TEST = """
    import pytest

    @pytest.mark.nni_docker(timeout=300, no_progress_timeout=300)
    def test_slow(nni_experiment):
        nni_experiment.run({
            "trialCodeDirectory": "cases",
            "trialCommand": "python3 silent_trial.py",
            "trialConcurrency": 1,
            "maxTrialNumber": 1,
            "searchSpace": {"x": {"_type": "choice", "_value": [0.5]}},
            "tuner": {"name": "Random"},
        })
"""

EMPTY_MARKED_TEST = """
    import pytest

    @pytest.mark.nni_docker
    def test_needs_docker(nni_experiment):
        pass
"""


@pytest.fixture
def docker_client():
    client = docker.from_env()
    yield client
    client.close()


def objects_of_owner(client, pid: int) -> list[str]:
    """Return the names of the plugin's containers, networks and volumes that process ``pid`` created."""
    selector = {"label": [LABEL_PLUGIN, f"{LABEL_OWNER_PID}={pid}"]}
    names = [f"container {c.name}" for c in client.containers.list(all=True, filters=selector)]
    names += [f"network {n.name}" for n in client.networks.list(filters=selector)]
    names += [f"volume {v.name}" for v in client.volumes.list(filters=selector)]
    return names


def start_child(pytester, source: str, *args: str) -> subprocess.Popen:
    """Start pytest on ``source`` in a child process, as a user runs it; the Ryuk reaper is not configured."""
    pytester.makepyfile(test_child=source)
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("TESTCONTAINERS_", "PYTEST_XDIST"))}
    # faulthandler prints every thread's stack on SIGABRT, which finish_child sends to a child that hangs.
    return subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *args,
         "test_child.py"],
        cwd=pytester.path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    """Give the child the default SIGINT action, as in a terminal.

    A suite started in the background by a shell without job control inherits
    SIGINT ignored, and Python then never turns Ctrl-C into KeyboardInterrupt.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish_child(child: subprocess.Popen, timeout: float = 90) -> str:
    """Return the child's output once it exits. Fail with its threads' stacks when it does not exit in time."""
    try:
        output, _ = child.communicate(timeout=timeout)
        return output
    except subprocess.TimeoutExpired:
        os.kill(child.pid, signal.SIGABRT)
        output, _ = child.communicate(timeout=30)
        pytest.fail(f"The child run did not exit within {timeout} s. Its output and stacks:\n{output[-6000:]}")


def wait_for_running_manager(client, pid: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        selector = {"label": [LABEL_PLUGIN, f"{LABEL_OWNER_PID}={pid}"], "status": "running"}
        if client.containers.list(filters=selector):
            # Let nnictl start the manager and a trial inside it.
            time.sleep(5)
            return
        time.sleep(0.5)
    raise AssertionError(f"No running container of process {pid} within {timeout} s")


def test_sigkill_leftovers_removed_by_next_run(pytester, docker_client):
    shutil.copytree(CASES, pytester.path / "cases")
    killed = start_child(pytester, SLOW_TEST)
    try:
        wait_for_running_manager(docker_client, killed.pid)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)

    left = objects_of_owner(docker_client, killed.pid)
    assert left, "a SIGKILL leaves the containers behind, so the next run has something to remove"

    pytester.makepyfile(test_child=EMPTY_MARKED_TEST)
    second = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_child.py")

    second.assert_outcomes(passed=1)
    assert objects_of_owner(docker_client, killed.pid) == []


def interrupt_child(pytester, docker_client, signum: int) -> tuple[int, str]:
    """Start the slow test in a child run, send it ``signum`` while its manager runs; return its pid and output."""
    shutil.copytree(CASES, pytester.path / "cases")
    child = start_child(pytester, SLOW_TEST)
    try:
        wait_for_running_manager(docker_client, child.pid)
        os.kill(child.pid, signum)
        return child.pid, finish_child(child)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)


def test_sigint_mid_experiment_removes_all(pytester, docker_client):
    """Ctrl-C sends SIGINT; pytest turns it into KeyboardInterrupt and the plugin cleans up."""
    pid, output = interrupt_child(pytester, docker_client, signal.SIGINT)

    assert "KeyboardInterrupt" in output
    assert objects_of_owner(docker_client, pid) == []


def test_sigterm_mid_experiment_removes_all(pytester, docker_client):
    pid, _ = interrupt_child(pytester, docker_client, signal.SIGTERM)

    assert objects_of_owner(docker_client, pid) == []


def test_keep_option_keeps_failed_test(pytester, docker_client):
    """--nni-keep keeps a failed test's manager, which stale cleanup leaves and cleanup --kept removes."""
    shutil.copytree(CASES, pytester.path / "cases")
    pytester.makepyfile(test_kept="""
        import pytest

        @pytest.mark.nni_docker(timeout=300)
        def test_fails(nni_experiment):
            nni_experiment.run({
                "trialCodeDirectory": "cases",
                "trialCommand": "python3 quick_trial.py",
                "trialConcurrency": 1,
                "maxTrialNumber": 1,
                "searchSpace": {"x": {"_type": "choice", "_value": [0.5]}},
                "tuner": {"name": "Random"},
            "tuner": {"name": "Random"},
            })
            assert False, "failing on purpose"
    """)
    selector = {"label": [LABEL_PLUGIN, f"{LABEL_TEST}=test_kept.py::test_fails"]}

    try:
        kept = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--nni-keep")

        kept.assert_outcomes(failed=1)
        kept.stdout.fnmatch_lines([
            f"*test_kept.py::test_fails: kept nni-docker-*-manager{KEPT_SUFFIX}, web UI http://127.0.0.1:*; "
            f"remove with `docker rm -f nni-docker-*{KEPT_SUFFIX}` or `python -m pytest_nni_docker cleanup --kept`",
        ])
        containers = docker_client.containers.list(all=True, filters=selector)
        assert len(containers) == 1
        assert containers[0].name.endswith(KEPT_SUFFIX)

        # The owner is gone now, and a later run still leaves the kept container alone.
        pytester.makepyfile(test_child=EMPTY_MARKED_TEST)
        pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_child.py").assert_outcomes(passed=1)
        assert len(docker_client.containers.list(all=True, filters=selector)) == 1

        cleanup = subprocess.run([sys.executable, "-m", "pytest_nni_docker", "cleanup", "--kept"],
                                 capture_output=True, text=True, timeout=120)
        assert cleanup.returncode == 0, cleanup.stderr
        assert docker_client.containers.list(all=True, filters=selector) == []
    finally:
        for container in docker_client.containers.list(all=True, filters=selector):
            container.remove(force=True, v=True)


@pytest.mark.nni_docker(timeout=300)
def test_ports_bind_to_loopback_only(nni_experiment, request):
    """``docker ps`` during a run shows the plugin's ports on 127.0.0.1 only, and no container is privileged."""
    seen_ports: list[str] = []
    seen_privileged: list[bool] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            listing = subprocess.run(
                ["docker", "ps", "--filter", f"label={LABEL_TEST}={request.node.nodeid}", "--format", "{{.ID}} {{.Ports}}"],
                capture_output=True, text=True,
            ).stdout
            for line in listing.splitlines():
                container_id, _, ports = line.partition(" ")
                seen_ports.append(ports)
                inspected = subprocess.run(["docker", "inspect", "--format", "{{.HostConfig.Privileged}}", container_id],
                                           capture_output=True, text=True).stdout.strip()
                if inspected:
                    seen_privileged.append(inspected == "true")
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = nni_experiment.run({
            "trialCodeDirectory": "cases",
            "trialCommand": "python3 quick_trial.py",
            "trialConcurrency": 1,
            "maxTrialNumber": 2,
            "searchSpace": {"x": {"_type": "choice", "_value": [0.2, 0.8]}},
            "tuner": {"name": "Random"},
        })
    finally:
        done.set()
        watcher.join(timeout=10)

    assert len(result.succeeded) == 2
    assert seen_ports, "docker ps never listed the test's container"
    for ports in seen_ports:
        for binding in ports.split(", "):
            assert binding.startswith("127.0.0.1:"), f"port binding {binding!r} is not on 127.0.0.1"
    assert seen_privileged
    assert not any(seen_privileged)
