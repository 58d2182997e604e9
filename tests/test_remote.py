"""Remote mode: SSH worker pools, real Docker, real SSH and real NNI.

Every experiment here is 4 trials of about 1 s, 2 at a time, on 2 workers.
"""

from __future__ import annotations

import io
import stat
import textwrap
import time
import uuid
from pathlib import Path

import docker
import pytest

from pytest_nni_docker import host_manager
from pytest_nni_docker.engine import LABEL_PLUGIN, LABEL_SESSION, Engine
from pytest_nni_docker.errors import ExperimentFailed
from pytest_nni_docker.images import PYTHON_PATH_FILE
from pytest_nni_docker.pool import PoolError, RemotePool
from pytest_nni_docker.ssh import check_login, run_command

HERE = Path(__file__).parent
CONFIG = HERE / "remote_experiment" / "config.yml"
TIMEOUT = 300


def _assert_spread_over_both_workers(result, pool) -> None:
    assert result.status == "DONE"
    assert result.mode == "remote"
    assert len(result.trials) == 4
    assert len(result.succeeded) == 4, [(t.id, t.status, t.worker, t.stderr[-300:]) for t in result.trials]
    assert {t.worker for t in result.trials} == {w.alias for w in pool.workers}
    for trial in result.trials:
        assert trial.final_value == trial.parameters["x"] + trial.parameters["y"]


@pytest.mark.nni_docker(mode="remote", workers=2, timeout=TIMEOUT)
def test_key_auth_nni_3_0(nni_experiment, nni_remote_pool):
    result = nni_experiment.run(CONFIG)

    _assert_spread_over_both_workers(result, nni_remote_pool)
    machines = result.config["trainingService"]["machineList"]
    assert [m["host"] for m in machines] == ["worker-0", "worker-1"]
    assert all("sshKeyFile" in m and "password" not in m for m in machines)
    for trial in result.trials:
        assert f"trial on {trial.worker} with" in trial.stdout


@pytest.mark.parametrize("nni_version", [
    pytest.param("3.0", marks=pytest.mark.nni_docker(mode="remote", auth="password", timeout=TIMEOUT)),
    pytest.param("2.10.1", marks=pytest.mark.nni_docker(mode="remote", nni_version="2.10.1", python="3.9", timeout=TIMEOUT)),
    pytest.param("2.10.1-password", marks=pytest.mark.nni_docker(
        mode="remote", nni_version="2.10.1", python="3.9", auth="password", timeout=TIMEOUT)),
])
def test_remote_cells(nni_experiment, nni_remote_pool, nni_version):
    result = nni_experiment.run(CONFIG)

    _assert_spread_over_both_workers(result, nni_remote_pool)
    assert result.nni_version.startswith(nni_version.split("-")[0])
    password = nni_remote_pool.credentials.password
    assert password not in result.to_json()
    if nni_remote_pool.credentials.auth == "password":
        assert all(m["password"] == "<redacted>" for m in result.config["trainingService"]["machineList"])


@pytest.mark.nni_docker(mode="remote", host_manager=True, timeout=TIMEOUT)
def test_host_manager(nni_experiment, nni_remote_pool):
    result = nni_experiment.run(CONFIG)

    _assert_spread_over_both_workers(result, nni_remote_pool)
    machines = result.config["trainingService"]["machineList"]
    assert {(m["host"], m["port"]) for m in machines} == {("127.0.0.1", w.host_port) for w in nni_remote_pool.workers}
    assert result.config["nniManagerIp"] == nni_remote_pool.gateway()


@pytest.mark.nni_docker(mode="remote", timeout=TIMEOUT, no_progress_timeout=120)
@pytest.mark.parametrize("nni_version", [
    pytest.param("3.0"),
    pytest.param("2.10.1", marks=pytest.mark.nni_docker(nni_version="2.10.1", python="3.9")),
])
def test_killed_worker_ends_experiment(nni_experiment, nni_remote_pool, nni_version):
    nni_remote_pool.when_trials_run(lambda: nni_remote_pool.kill_worker(0), on_worker=0)

    started = time.monotonic()
    try:
        result = nni_experiment.run(CONFIG, searchSpace={"x": {"_type": "choice", "_value": [1, 2, 3, 4]},
                                                         "y": {"_type": "choice", "_value": [10, 20]},
                                                         "seconds": {"_type": "choice", "_value": [4.0]}})
    except ExperimentFailed as error:
        # NNI 3.0's manager process sometimes dies of the killed worker's SSH
        # connection reset (an unhandled ECONNRESET in NNI). The plugin's part is to
        # end the run at once and name the cause.
        if nni_version != "3.0" or error.reason != "manager_died" or "ECONNRESET" not in str(error):
            raise
        assert nni_remote_pool.lost == {"worker-0"}
        assert error.result is not None
        assert time.monotonic() - started < TIMEOUT
        pytest.xfail("NNI 3.0's manager died of the lost worker's ECONNRESET; the plugin reported manager_died")

    # NNI 2.10 may have sent every trial to the lost worker, and then ends in
    # NO_MORE_TRIAL with no trial left to run.
    assert result.status in ("DONE", "NO_MORE_TRIAL")
    assert result.duration < TIMEOUT
    assert nni_remote_pool.lost == {"worker-0"}
    assert result.failed, result.counts
    assert {t.status for t in result.failed} <= {"USER_CANCELED", "FAILED", "SYS_CANCELED"}
    assert {t.worker for t in result.failed} == {"worker-0"}
    assert all(t.worker == "worker-1" for t in result.succeeded)


@pytest.mark.nni_docker(mode="remote", workers=2, auth="password")
def test_pool_password_stays_secret(nni_remote_pool):
    pool = nni_remote_pool
    password = pool.credentials.password

    assert password not in repr(pool)
    assert password not in repr(pool.credentials)
    for worker in pool.workers:
        attrs = docker.from_env().api.inspect_container(worker.id)
        assert password not in str(attrs)
        code, _ = worker.exec(["test", "-e", "/etc/pytest-nni-docker/worker-password"])
        assert code != 0, "the entrypoint must delete the password file"
        code, _ = worker.exec(["test", "-s", "/root/.ssh/authorized_keys"])
        assert code != 0, "password auth must not authorize the key"
    assert [m["password"] for m in pool.machine_list()] == [password, password]


@pytest.mark.nni_docker(mode="remote", workers=2)
def test_pool_workers_ready_over_ssh(nni_remote_pool, nni_ssh_credentials):
    pool = nni_remote_pool

    assert stat.S_IMODE(nni_ssh_credentials.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(nni_ssh_credentials.folder.stat().st_mode) == 0o700
    for worker in pool.workers:
        assert check_login(worker.published_host, worker.host_port, pool.credentials, pool.python_path, "3.0")
        code, output = run_command(worker.published_host, worker.host_port, pool.credentials,
                                   f"PATH={pool.python_path}:$PATH python -m pip install nni --upgrade")
        assert code == 0, output
        code, output = run_command(worker.published_host, worker.host_port, pool.credentials,
                                   f"PATH={pool.python_path}:$PATH python -c 'import nni; print(nni.__version__)'")
        assert output.strip() == "3.0"
    with pytest.raises(RuntimeError, match="expected 2.10.1"):
        check_login(pool.workers[0].published_host, pool.workers[0].host_port, pool.credentials, pool.python_path, "2.10.1")
    assert [m["port"] for m in pool.machine_list()] == [w.host_port for w in pool.workers]
    assert [m["host"] for m in pool.machine_list(from_host=False)] == ["worker-0", "worker-1"]


# Appended to NNI's __init__.py: the package and its metadata stay, only importing it fails.
_BREAK_IMPORT = 'raise ImportError("NNI broken on purpose by the test")'
_NNI_INIT = "import importlib.util; print(importlib.util.find_spec('nni').origin)"


@pytest.mark.nni_docker(mode="remote", workers=3)
def test_pool_imports_nni_on_one_worker(nni_remote_pool):
    """The pool imports NNI on one worker; the others find it by its metadata, which a broken import passes."""
    pool = nni_remote_pool
    assert pool.imported_on in {w.alias for w in pool.workers}
    worker = pool.worker(1)
    code, init_file = worker.exec([f"{pool.python_path}/python", "-c", _NNI_INIT])
    assert code == 0, init_file
    code, output = worker.exec(["sh", "-c", f"echo '{_BREAK_IMPORT}' >> {init_file.strip()}"])
    assert code == 0, output

    login = (worker.published_host, worker.host_port, pool.credentials, pool.python_path, "3.0")
    assert check_login(*login, import_nni=False)
    with pytest.raises(RuntimeError, match="broken on purpose"):
        check_login(*login, import_nni=True)


def _image_with_broken_nni(worker_image: str) -> str:
    client = docker.from_env()
    tag = f"pytest-nni-docker/test-broken-nni:{uuid.uuid4().hex[:8]}"
    dockerfile = (f"FROM {worker_image}\n"
                  f"RUN P=$(cat {PYTHON_PATH_FILE}) && echo '{_BREAK_IMPORT}' >> \"$($P/python -c \"{_NNI_INIT}\")\"\n")
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True, pull=False,
                        labels={LABEL_PLUGIN: "1"})
    client.close()
    return tag


@pytest.mark.nni_docker(mode="remote", workers=1)
@pytest.mark.parametrize("every", [False, True], ids=["one-import", "import-on-every-worker"])
def test_broken_nni_import_fails_start(nni_remote_pool, nni_ssh_credentials, every):
    """A worker image whose NNI does not import fails the start with the import error, without waiting for the timeout."""
    tag = _image_with_broken_nni(nni_remote_pool.image)
    engine = Engine()
    pool = RemotePool(engine, tag, "3.0", nni_ssh_credentials, size=3, test_name="broken-nni",
                      import_on_every_worker=every)
    try:
        with pytest.raises(PoolError) as caught:
            pool.start()
    finally:
        pool.remove()
        remaining = engine.client.containers.list(all=True, filters={"label": f"{LABEL_SESSION}={engine.session_id}"})
        engine.remove_session_objects()
        docker.from_env().images.remove(tag, force=True)

    message = str(caught.value)
    print(f"\n{message}")
    assert "is not usable" in message
    assert "NNI broken on purpose by the test" in message
    assert "/opt/nni/bin/python -c \"import nni\"` works in the image" in message
    assert "Timed out" not in message
    assert remaining == []


@pytest.mark.nni_docker(mode="remote", workers=1)
def test_other_nni_version_fails_start(nni_remote_pool, nni_ssh_credentials):
    """Workers with NNI 3.0 in a pool that expects 2.10.1: the start fails naming both versions."""
    engine = Engine()
    pool = RemotePool(engine, nni_remote_pool.image, "2.10.1", nni_ssh_credentials, size=2, test_name="other-version")
    try:
        with pytest.raises(PoolError, match=r"has NNI 3\.0, expected 2\.10\.1") as caught:
            pool.start()
    finally:
        pool.remove()
        engine.remove_session_objects()
    assert "Timed out" not in str(caught.value)
    assert "Build the worker image from an NNI 2.10.1 image, or set nni_version" in str(caught.value)


def test_pool_leaves_nothing_behind(pytester):
    pytester.makeconftest("import os\nos.environ.setdefault('TESTCONTAINERS_RYUK_DISABLED', 'true')\n")
    pytester.makepyfile(textwrap.dedent("""
        import json, pathlib, pytest

        @pytest.mark.nni_docker(mode="remote", workers=3)
        def test_pool(nni_remote_pool, nni_ssh_credentials):
            pathlib.Path("state.json").write_text(json.dumps({
                "session": nni_remote_pool.engine.session_id,
                "key_folder": str(nni_ssh_credentials.folder),
                "workers": [w.name for w in nni_remote_pool.workers],
            }))
            assert len(nni_remote_pool.workers) == 3
    """))

    result = pytester.runpytest_subprocess("--nni-require-docker", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)
    import json
    state = json.loads((pytester.path / "state.json").read_text())
    client = docker.from_env()
    selector = {"label": f"{LABEL_SESSION}={state['session']}"}
    assert client.containers.list(all=True, filters=selector) == []
    assert client.networks.list(filters=selector) == []
    assert not Path(state["key_folder"]).exists()


def test_user_machine_list_replaced(pytester):
    pytester.makeconftest("import os\nos.environ.setdefault('TESTCONTAINERS_RYUK_DISABLED', 'true')\n")
    experiment = pytester.mkdir("experiment")
    for name in ("trial.py",):
        (experiment / name).write_text((HERE / "remote_experiment" / name).read_text())
    config = (HERE / "remote_experiment" / "config.yml").read_text()
    config += textwrap.dedent("""\
          machineList:
            - {host: 10.0.0.9, user: someone, password: not-used}
        nniManagerIp: 10.0.0.1
    """)
    (experiment / "config.yml").write_text(config.replace("maxTrialNumber: 4", "maxTrialNumber: 2"))
    pytester.makepyfile(textwrap.dedent(f"""
        import pytest

        @pytest.mark.nni_docker(mode="remote", workers=1, timeout={TIMEOUT})
        def test_run(nni_experiment):
            result = nni_experiment.run("experiment/config.yml")
            assert result.status == "DONE"
            assert len(result.succeeded) == 2
            assert {{t.worker for t in result.trials}} == {{"worker-0"}}
            assert result.config["trainingService"]["machineList"][0]["host"] == "worker-0"
            assert result.config["nniManagerIp"] != "10.0.0.1"
    """))

    result = pytester.runpytest_subprocess("--nni-require-docker", "-p", "no:cacheprovider", "-o", "log_cli=true",
                                           "--log-cli-level=WARNING")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*Replaced the config's machineList (1 machines) with the pool's 1 workers*",
                                 "*Replaced the config's nniManagerIp '10.0.0.1'*"])


def test_host_manager_skipped_without_nni(pytester):
    pytester.makeconftest(textwrap.dedent("""
        import os
        os.environ.setdefault('TESTCONTAINERS_RYUK_DISABLED', 'true')
        from pytest_nni_docker import host_manager
        host_manager.host_nni_version = lambda: None
    """))
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.nni_docker(mode="remote", host_manager=True)
        def test_run(nni_experiment):
            raise AssertionError("must be skipped")
    """))

    result = pytester.runpytest_subprocess("--nni-require-docker", "-p", "no:cacheprovider", "-rs")

    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*NNI is not installed on this host*pip install nni==3.0*"])



@pytest.mark.nni_docker(mode="remote", workers=1, timeout=TIMEOUT)
def test_rejected_ssh_login_names_cause(nni_experiment, nni_remote_pool):
    """A worker that no longer accepts the key: NNI stops the experiment, and the failure names the SSH error."""
    code, output = nni_remote_pool.worker(0).exec(["sh", "-c", ": > /root/.ssh/authorized_keys"])
    assert code == 0, output

    with pytest.raises(ExperimentFailed) as caught:
        nni_experiment.run(CONFIG)

    message = str(caught.value)
    print(f"\n{message}")
    assert caught.value.reason == "stopped"
    assert "NNI stopped the experiment by itself" in message
    assert "All configured authentication methods failed" in message
    assert "could not log in to a remote worker over SSH" in message
