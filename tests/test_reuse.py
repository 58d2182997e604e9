"""--nni-reuse-manager: tests of one session share manager containers and worker pools, and their experiments stay isolated."""

import json
import math
import shutil
import threading
from pathlib import Path

import docker

from pytest_nni_docker.config import CONTAINER_ROOT, prepare_experiment
from pytest_nni_docker.engine import LABEL_SESSION
from pytest_nni_docker.pool import RemotePool
from pytest_nni_docker.reuse import Lease

DATA = Path(__file__).parent / "data"
KNOWN_FUNCTION = DATA / "known_function"

# Two trials with different code: test_first reports 10 * x + y, test_second the negative.
INNER_TESTS = """
    import json
    import os

    import docker
    import pytest

    from pytest_nni_docker.plugin import session_key


    def record(request, name, result):
        client = docker.from_env()
        try:
            shared = client.containers.get(result.trials[0].worker)
            listing = shared.exec_run(["sh", "-c", "ls -A /nni/runs /root/nni-experiments"]).output.decode()
        finally:
            client.close()
        entry = {
            "session": request.config.stash[session_key].engine().session_id,
            "id": result.id,
            "status": result.status,
            "workers": sorted({trial.worker for trial in result.trials}),
            "trials": [[trial.parameters, trial.final_metric] for trial in result.trials],
            "listing": listing,
        }
        with open(os.path.join(os.environ["REUSE_OUTPUT"], name + ".json"), "w") as output:
            json.dump(entry, output)


    @pytest.mark.nni_docker(timeout=300)
    def test_first(nni_experiment, request):
        record(request, "first", nni_experiment.run("first/config.yml"))


    @pytest.mark.nni_docker(timeout=300)
    def test_second(nni_experiment, request):
        record(request, "second", nni_experiment.run("second/config.yml"))
"""


def session_objects(session_id: str) -> tuple[list[str], list[str]]:
    """Return the names of the containers and networks that the test session ``session_id`` left."""
    client = docker.from_env()
    try:
        selector = {"label": f"{LABEL_SESSION}={session_id}"}
        containers = [container.name for container in client.containers.list(all=True, filters=selector)]
        networks = [network.name for network in client.networks.list(filters=selector)]
    finally:
        client.close()
    return containers, networks


def _write_experiment(folder, sign):
    folder.mkdir()
    trial = (KNOWN_FUNCTION / "trial.py").read_text()
    if sign < 0:
        trial = trial.replace("nni.report_final_result(10 * params[\"x\"] + params[\"y\"])",
                              "nni.report_final_result(-(10 * params[\"x\"] + params[\"y\"]))")
        assert "-(10" in trial
    (folder / "trial.py").write_text(trial)
    (folder / "config.yml").write_text((KNOWN_FUNCTION / "config.yml").read_text().replace("maxTrialNumber: 4", "maxTrialNumber: 2"))


def test_two_tests_share_one_manager(pytester, tmp_path, monkeypatch):
    _write_experiment(pytester.path / "first", sign=1)
    _write_experiment(pytester.path / "second", sign=-1)
    pytester.makepyfile(test_inner=INNER_TESTS)
    monkeypatch.setenv("REUSE_OUTPUT", str(tmp_path))

    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--nni-reuse-manager", "--nni-require-docker")

    run.assert_outcomes(passed=2)
    first = json.loads((tmp_path / "first.json").read_text())
    second = json.loads((tmp_path / "second.json").read_text())
    assert len(first["workers"]) == 1
    assert "-shared-" in first["workers"][0]
    assert second["workers"] == first["workers"]
    assert first["id"] != second["id"]
    assert first["status"] == "DONE"
    assert second["status"] == "DONE"
    assert len(first["trials"]) == 2
    assert len(second["trials"]) == 2
    for parameters, metric in first["trials"]:
        assert math.isclose(metric, 10 * parameters["x"] + parameters["y"]), (parameters, metric)
    for parameters, metric in second["trials"]:
        assert math.isclose(metric, -(10 * parameters["x"] + parameters["y"])), (parameters, metric)
    # Each run deletes its folders when it ends, so afterwards the shared container contains no experiment folder.
    assert first["id"] not in second["listing"]
    assert second["id"] not in second["listing"]

    containers, networks = session_objects(first["session"])
    assert containers == []
    assert networks == []


def test_rebase_moves_every_folder(tmp_path):
    code = tmp_path / "code"
    tuner = tmp_path / "tuner"
    code.mkdir()
    tuner.mkdir()
    prepared = prepare_experiment({
        "searchSpace": {"x": {"_type": "choice", "_value": [1]}},
        "trialCommand": f"python3 {CONTAINER_ROOT}/code/trial.py",
        "trialCodeDirectory": str(code),
        "trialConcurrency": 1,
        "tuner": {"className": "my_tuner.MyTuner", "codeDirectory": str(tuner)},
    })
    lease = Lease(shared=None, port=8081, root=f"{CONTAINER_ROOT}/runs/7")

    rebased = lease.rebase(prepared)

    assert rebased.config["trialCodeDirectory"] == "/nni/runs/7/code"
    assert rebased.config["trialCommand"] == "python3 /nni/runs/7/code/trial.py"
    assert rebased.config["tuner"]["codeDirectory"] == "/nni/runs/7/tuner"
    assert rebased.uploads == {"/nni/runs/7/code": code, "/nni/runs/7/tuner": tuner}
    assert prepared.config["trialCodeDirectory"] == "/nni/code"
    assert lease.config_path == "/nni/runs/7/config.yml"


# Three remote tests in one session. The first leaves a process and a file on a
# worker, the second finds both gone and then kills a worker, so the third gets a
# new pool. Each writes what it saw to REUSE_OUTPUT.
REMOTE_TESTS = """
    import json
    import os

    import pytest

    from pytest_nni_docker.plugin import session_key

    LIST_PROCESSES = "for e in /proc/[0-9]*; do tr '\\\\0' ' ' < $e/cmdline; echo; done"


    def record(request, name, pool, result):
        code, processes = pool.worker(0).exec(["sh", "-c", LIST_PROCESSES])
        entry = {
            "session": request.config.stash[session_key].engine().session_id,
            "network": pool.network_name,
            "containers": [worker.container.id for worker in pool.workers],
            "id": result.id,
            "status": result.status,
            "succeeded": len(result.succeeded),
            "workers": sorted({trial.worker for trial in result.trials}),
            "sums": [trial.final_value == trial.parameters["x"] + trial.parameters["y"] for trial in result.trials],
            "leftover": pool.worker(0).exec(["test", "-e", "/tmp/nni-experiments/leftover"])[0] == 0,
            "processes": processes,
        }
        with open(os.path.join(os.environ["REUSE_OUTPUT"], name + ".json"), "w") as output:
            json.dump(entry, output)


    @pytest.mark.nni_docker(mode="remote", workers=2, timeout=300)
    def test_first(nni_experiment, nni_remote_pool, request):
        result = nni_experiment.run("remote_experiment/config.yml")
        worker = nni_remote_pool.worker(0)
        worker.exec(["sh", "-c", "mkdir -p /tmp/nni-experiments && touch /tmp/nni-experiments/leftover"])
        worker.exec(["sh", "-c", "nohup sleep 613 >/dev/null 2>&1 &"])
        record(request, "first", nni_remote_pool, result)


    @pytest.mark.nni_docker(mode="remote", workers=2, timeout=300)
    def test_second(nni_experiment, nni_remote_pool, request):
        result = nni_experiment.run("remote_experiment/config.yml")
        record(request, "second", nni_remote_pool, result)
        nni_remote_pool.kill_worker(1)


    @pytest.mark.nni_docker(mode="remote", workers=2, timeout=300)
    def test_third(nni_experiment, nni_remote_pool, request):
        record(request, "third", nni_remote_pool, nni_experiment.run("remote_experiment/config.yml"))
"""


def test_remote_tests_share_one_pool(pytester, tmp_path, monkeypatch):
    shutil.copytree(Path(__file__).parent / "remote_experiment", pytester.path / "remote_experiment")
    pytester.makepyfile(test_inner=REMOTE_TESTS)
    monkeypatch.setenv("REUSE_OUTPUT", str(tmp_path))

    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--nni-reuse-manager", "--nni-require-docker")

    run.assert_outcomes(passed=3)
    first, second, third = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("first", "second", "third"))
    for entry in (first, second, third):
        assert entry["status"] == "DONE"
        assert entry["succeeded"] == 4
        assert entry["workers"] == ["worker-0", "worker-1"]
        assert all(entry["sums"])
    assert len({first["id"], second["id"], third["id"]}) == 3
    # The second test got the first one's workers, reset: the leftover process and file are gone.
    assert second["containers"] == first["containers"]
    assert second["network"] == first["network"]
    assert "sleep 613" in first["processes"]
    assert first["leftover"]
    assert "sleep 613" not in second["processes"]
    assert not second["leftover"]
    assert any(line.startswith("sshd: /usr/sbin/sshd -D") for line in second["processes"].splitlines())
    # The second test killed a worker, so the third got a new pool.
    assert not set(third["containers"]) & set(second["containers"])
    assert third["network"] != second["network"]

    containers, networks = session_objects(first["session"])
    assert containers == []
    assert networks == []


def test_reset_rejects_lost_or_waiting_pool():
    """``reset`` refuses a pool that lost a worker or whose ``when_trials_run`` action still waits.

    No containers: both reasons are decided before the workers are touched.
    """
    pool = RemotePool(engine=None, image="unused", nni_version="3.0", credentials=None)
    pool.lost.add("worker-1")
    assert pool.reset() == "workers worker-1 were killed or stopped"

    pool.lost.clear()
    release = threading.Event()
    waiting = threading.Thread(target=release.wait, daemon=True)
    waiting.start()
    pool._watchers.append(waiting)
    try:
        assert pool.reset() == "an action of when_trials_run still waits for trials"
    finally:
        release.set()
        waiting.join()
    assert pool.reset() is None
