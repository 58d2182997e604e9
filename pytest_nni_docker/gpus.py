"""GPUs in the containers: whether the Docker host can give them.

The request itself comes from ``Settings.device_requests()``: Docker's device
requests, as ``docker run --gpus`` sends them. They work only where the Docker
host has the NVIDIA Container Toolkit (the hook that nvidia-docker installs) and
an NVIDIA driver. The probe here starts a throwaway container with the same
requests, because Docker accepts them at create time and fails only at start.
"""

from __future__ import annotations

import logging
from typing import Any

import docker.errors
import docker.types

from pytest_nni_docker.engine import Engine

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 60


def gpu_problem(engine: Engine, image: str, device_requests: list[dict[str, Any]], test: str = "") -> str | None:
    """Start a container of ``image`` with ``device_requests``; return why it got no GPUs, or None when it did."""
    container = engine.client.containers.create(
        image, ["true"], labels=engine.labels("gpu-probe", test),
        device_requests=[docker.types.DeviceRequest(**request) for request in device_requests],
    )
    try:
        container.start()
        outcome = container.wait(timeout=PROBE_TIMEOUT)
    except docker.errors.APIError as error:
        text = str(error)
        logger.info("GPU probe in %s failed: %s", image, text)
        if "could not select device driver" in text:
            return ("the Docker host has no NVIDIA runtime: Docker found no device driver for GPUs. Install the NVIDIA "
                    "Container Toolkit and an NVIDIA driver on the Docker host to run GPU experiments")
        return f"Docker could not give the container GPUs: {text}"
    finally:
        container.remove(force=True)

    if outcome.get("StatusCode") != 0:
        return f"a container with GPUs exited with status {outcome.get('StatusCode')}"
    return None
