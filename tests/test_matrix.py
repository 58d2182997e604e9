"""Every supported NNI x Python cell runs a real experiment in Docker, and GPU
requests reach Docker in the form that ``docker run --gpus`` sends.

Each cell builds (or reuses) its image and runs 2 trials of the example
experiment. ``--nni-cells`` picks cells: `make test` runs one cell per NNI
version, `tox -m matrix` runs them all.
"""

import subprocess
from pathlib import Path

import docker
import docker.types
import pytest

import pytest_nni_docker
from pytest_nni_docker.engine import Engine
from pytest_nni_docker.settings import Settings

EXAMPLE = Path(__file__).parent.parent / "examples" / "sklearn_digits" / "config.yml"
# Prints the container's Python and NNI versions into each trial's output first.
REPORT_VERSIONS = (
    "python3 -c 'import sys, nni; print(\"cell python\", \"%d.%d\" % sys.version_info[:2], \"nni\", nni.__version__)'"
    " && python3 trial.py"
)
GPU_TEST = """
    import pytest

    @pytest.mark.nni_docker(gpus="all")
    def test_gpu(nni_experiment):
        nni_experiment.run({"trialCommand": "nvidia-smi", "trialConcurrency": 1, "searchSpace": {},
                            "trialGpuNumber": 1, "trainingService": {"platform": "local", "useActiveGpu": True}})
"""


@pytest.mark.parametrize("cell", pytest_nni_docker.cells(timeout=600))
def test_cell_runs_example(nni_experiment, cell):
    result = nni_experiment.run(EXAMPLE, maxTrialNumber=2, trialCommand=REPORT_VERSIONS)

    assert result.status == "DONE"
    assert len(result.succeeded) == 2, [(t.id, t.status, t.stderr[-500:]) for t in result.failed]
    assert result.nni_version.startswith(cell.nni_version)
    for trial in result.trials:
        output = trial.trial_log + trial.stdout
        assert f"cell python {cell.python} nni {cell.nni_version}" in output, output[-500:]
        assert 0.0 < trial.final_metric <= 1.0
        assert len(trial.intermediate_metrics) == 3


REMOTE_EXAMPLE = Path(__file__).parent / "remote_experiment" / "config.yml"
WORKER_PYTHON = "$(cat /etc/pytest-nni-docker/python-path)/python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'"


@pytest.mark.parametrize("cell", pytest_nni_docker.cells(mode="remote", workers=2, timeout=600))
def test_cell_runs_remote(nni_experiment, nni_remote_pool, cell):
    result = nni_experiment.run(REMOTE_EXAMPLE)

    assert result.status == "DONE"
    assert len(result.succeeded) == 4, [(t.id, t.status, t.worker, t.stderr[-500:]) for t in result.trials]
    assert result.nni_version.startswith(cell.nni_version)
    # NNI 2.10 can run all 4 short trials on the worker whose environment starts
    # first, so this checks where trials ran, and tests/test_remote.py the spread.
    assert {t.worker for t in result.trials} <= {w.alias for w in nni_remote_pool.workers}
    assert None not in {t.worker for t in result.trials}
    for worker in nni_remote_pool.workers:
        code, output = worker.exec(["sh", "-c", WORKER_PYTHON])
        assert code == 0, output
        assert output.strip() == cell.python


@pytest.fixture
def docker_client():
    client = Engine().client
    try:
        client.ping()
    except docker.errors.DockerException as error:
        pytest.skip(f"no Docker daemon: {error}")
    return client


def created_device_requests(client, labels, device_requests=None, cli_gpus=None):
    """Create (never start) a container and return its HostConfig.DeviceRequests, through the SDK or the docker CLI."""
    image = "pytest-nni-docker/debian:bookworm"
    if cli_gpus is not None:
        label_args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
        created = subprocess.run(["docker", "create", "--gpus", cli_gpus, *label_args, image, "true"],
                                 capture_output=True, text=True, check=True)
        container = client.containers.get(created.stdout.strip())
    else:
        container = client.containers.create(image, ["true"], labels=labels, device_requests=device_requests)
    try:
        return container.attrs["HostConfig"]["DeviceRequests"]
    finally:
        container.remove(force=True)


@pytest.mark.parametrize(
    ("gpus", "cli_gpus", "count", "device_ids"),
    [
        ("all", "all", -1, []),
        (2, "2", 2, []),
        ("0,1", "device=0,1", 0, ["0", "1"]),
    ],
    ids=["all", "count", "device-ids"],
)
def test_gpu_request_matches_docker_cli(docker_client, gpus, cli_gpus, count, device_ids):
    engine = Engine()
    labels = engine.labels("gpu-request-test", "test_gpu_request_matches_docker_cli")
    requests = Settings(gpus=gpus).device_requests()

    ours = created_device_requests(docker_client, labels, [docker.types.DeviceRequest(**r) for r in requests])
    cli = created_device_requests(docker_client, labels, cli_gpus=f'"{cli_gpus}"' if "," in cli_gpus else cli_gpus)

    assert len(ours) == 1
    assert ours[0]["Driver"] == "nvidia"
    assert ours[0]["Count"] == count
    assert (ours[0]["DeviceIDs"] or []) == device_ids
    assert ours[0]["Capabilities"] == [["gpu", "compute", "utility"]]
    assert ours[0]["Count"] == cli[0]["Count"]
    assert (ours[0]["DeviceIDs"] or []) == (cli[0]["DeviceIDs"] or [])
    assert "gpu" in cli[0]["Capabilities"][0]


def test_gpus_option_reaches_settings(pytester):
    pytester.makepyfile("""
        def test_settings(nni_docker_settings):
            print("gpus", repr(nni_docker_settings.gpus), nni_docker_settings.device_requests())
    """)

    result = pytester.runpytest("-s", "--nni-gpus", "0,1")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*gpus '0,1' ?{'driver': 'nvidia', 'capabilities': *, 'device_ids': ?'0', '1'?}?"])


def test_gpu_test_skipped_without_nvidia_runtime(pytester, docker_client):
    info = docker_client.info()
    if "nvidia" in (info.get("Runtimes") or {}):
        pytest.skip("this Docker host has an NVIDIA runtime")
    pytester.makepyfile(GPU_TEST)

    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")

    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no GPUs for gpus='all': the Docker host has no NVIDIA runtime*NVIDIA Container Toolkit*"])
    leftovers = docker_client.containers.list(all=True, filters={"label": "io.github.pytest-nni-docker.role=gpu-probe"})
    assert leftovers == []
