"""Helpers shared by the benchmark scripts: the image, statistics and the machine."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from pathlib import Path

from pytest_nni_docker.engine import Engine
from pytest_nni_docker.images import ImageBuilder, ImageSpec
from pytest_nni_docker.settings import DEFAULT_BASE_IMAGE

NNI_VERSION = "3.0"
REPOSITORY = Path(__file__).resolve().parent.parent


def nni_image() -> str:
    """Return the NNI image the plugin uses by default, building it when it is not cached."""
    return ImageBuilder(Engine()).ensure_nni_image(ImageSpec(NNI_VERSION, DEFAULT_BASE_IMAGE), allow_pull=False)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_average() -> float:
    """Return the 1-minute load average."""
    return os.getloadavg()[0]


def machine() -> dict[str, str]:
    """Return a description of this machine and its Docker daemon, for the report."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kilobytes = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kilobytes / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    info = Engine().client.info()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True).stdout.strip()
    return {
        "os": f"{platform.system()} {platform.release()}",
        "distribution": _os_release(),
        "cpu": f"{os.cpu_count()} cores, {cpu}",
        "memory": memory,
        "docker": f"{info.get('ServerVersion', '?')}, storage {info.get('Driver', '?')}, cgroup v{info.get('CgroupVersion', '?')}",
        "python": platform.python_version(),
        "commit": commit,
    }


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return ""
