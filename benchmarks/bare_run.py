"""The baseline: the benchmark experiment run by hand in the NNI image, with no plugin.

It starts the image with the docker SDK (as ``docker run --init``), copies the
experiment in (as ``docker cp``), runs ``nnictl create``, polls NNI's REST API
every 20 ms (``poll_interval``) until every trial has ended, and removes the container. The
container carries the plugin's labels, so a run killed half-way is cleaned up
by the next test session, and it is removed in ``finally`` otherwise.

Run alone from the repository root: ``python -m benchmarks.bare_run`` prints the
timings of one run as JSON.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import docker
import requests

from pytest_nni_docker.engine import Engine

EXPERIMENT_DIR = Path(__file__).parent / "experiment"
CONTAINER_DIR = "/experiment"
REST_PORT = 8080
POLL_INTERVAL = 0.02
TERMINAL = ("SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED")


def _archive(folder: Path, target: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(str(folder), arcname=target.strip("/"))
    return buffer.getvalue()


def run_bare(image: str, trials: int = 8, timeout: float = 600.0, poll_interval: float = POLL_INTERVAL) -> dict[str, float]:
    """Run the benchmark experiment by hand in ``image``; return seconds per step.

    ``total`` runs from the container start to the end of its removal.
    ``end_noticed_after`` is the time from the last trial's end (NNI's record) to
    the poll that saw every trial ended.
    """
    engine = Engine()
    client = docker.from_env(version="auto")
    session = requests.Session()
    session.trust_env = False
    config = (EXPERIMENT_DIR / "config.yml").read_text().replace("maxTrialNumber: 8", f"maxTrialNumber: {trials}")
    timings: dict[str, float] = {}
    container = None

    started = time.perf_counter()
    try:
        container = client.containers.run(
            image, ["sleep", "infinity"], detach=True, init=True,
            labels=engine.labels("benchmark"), ports={f"{REST_PORT}/tcp": ("127.0.0.1", None)},
        )
        container.reload()
        host_port = container.attrs["NetworkSettings"]["Ports"][f"{REST_PORT}/tcp"][0]["HostPort"]
        timings["container_start"] = time.perf_counter() - started

        step = time.perf_counter()
        container.put_archive("/", _archive(EXPERIMENT_DIR, CONTAINER_DIR))
        container.put_archive(CONTAINER_DIR, _config_archive(config))
        timings["code_copy"] = time.perf_counter() - step

        step = time.perf_counter()
        result = container.exec_run(["nnictl", "create", "--config", f"{CONTAINER_DIR}/config.yml", "--port", str(REST_PORT)])
        if result.exit_code != 0:
            raise RuntimeError(f"nnictl create failed (exit {result.exit_code}):\n{result.output.decode(errors='replace')}")
        timings["manager_start"] = time.perf_counter() - step

        step = time.perf_counter()
        api = f"http://127.0.0.1:{host_port}/api/v1/nni"
        deadline = time.monotonic() + timeout
        while True:
            statistics = session.get(f"{api}/job-statistics", timeout=5).json()
            ended = sum(item["trialJobNumber"] for item in statistics if item["trialJobStatus"] in TERMINAL)
            if ended >= trials:
                noticed = time.time()
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"The bare run did not finish in {timeout:.0f} s: {statistics}")
            time.sleep(poll_interval)
        timings["wait"] = time.perf_counter() - step
        jobs = session.get(f"{api}/trial-jobs", timeout=5).json()
        timings["end_noticed_after"] = noticed - max(job["endTime"] for job in jobs) / 1000
    finally:
        step = time.perf_counter()
        if container is not None:
            container.remove(force=True, v=True)
        timings["stop_and_remove"] = time.perf_counter() - step
        session.close()
        client.close()
    timings["total"] = time.perf_counter() - started
    return timings


def _config_archive(text: str) -> bytes:
    buffer = io.BytesIO()
    payload = text.encode()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("config.yml")
        info.size = len(payload)
        info.mtime = int(time.time())
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


if __name__ == "__main__":
    from benchmarks.common import nni_image

    print(json.dumps(run_bare(nni_image()), indent=2))
