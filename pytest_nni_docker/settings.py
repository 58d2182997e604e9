"""Settings of a run: command line and ini options, overridden per test by the
keyword arguments of ``@pytest.mark.nni_docker``. Checked before any container starts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from pytest_nni_docker import versions
from pytest_nni_docker.errors import ConfigError

Mode = Literal["local", "remote"]
Auth = Literal["key", "password"]
DEFAULT_BASE_IMAGE = "pytest-nni-docker/debian:bookworm"


@dataclass(frozen=True)
class Settings:
    """Everything that decides which containers a test gets and how long it waits.

    Times are in seconds. ``image`` is a ready NNI image used as it is; without it
    the plugin builds one from ``nni_version`` and ``base_image`` (or ``python``,
    which picks a Debian base image with that Python version).
    """

    nni_version: str = versions.DEFAULT_NNI_VERSION
    image: str | None = None
    base_image: str = DEFAULT_BASE_IMAGE
    python: str | None = None
    pip_packages: tuple[str, ...] = ()
    timeout: float = 900.0
    no_progress_timeout: float = 300.0
    keep: bool = False
    mode: Mode = "local"
    workers: int = 2
    auth: Auth = "key"
    host_manager: bool = False
    import_on_every_worker: bool = False
    gpus: str | int | None = None
    allow_pull: bool = True

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def merged(self, overrides: dict[str, Any], source: str) -> Settings:
        """Return a copy with ``overrides`` applied; unknown keys raise ``ConfigError``."""
        unknown = sorted(set(overrides) - set(self.keys()))
        if unknown:
            raise ConfigError(f"{source} has unknown arguments: {', '.join(unknown)}. Known: {', '.join(self.keys())}.")
        values = dict(overrides)
        if "pip_packages" in values:
            packages = values["pip_packages"]
            values["pip_packages"] = (packages,) if isinstance(packages, str) else tuple(packages or ())
        if "python" in values and values["python"] is not None and "base_image" not in values:
            values["python"] = str(values["python"])
        if "nni_version" in values:
            values["nni_version"] = str(values["nni_version"])
        return replace(self, **values)

    def resolved_base_image(self) -> str:
        """Return the base image to build on: ``python`` picks a Debian suite unless ``base_image`` was set."""
        if self.python and self.base_image == DEFAULT_BASE_IMAGE:
            return versions.base_image_for_python(self.python)
        return self.base_image

    def check(self, source: str) -> None:
        """Raise ``ConfigError`` naming the value and the fix when a setting is impossible."""
        versions.release(self.nni_version)
        for name in ("timeout", "no_progress_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
                raise ConfigError(f"{source}: {name} must be a positive number of seconds, not {value!r}.")
        if self.mode not in ("local", "remote"):
            raise ConfigError(f"{source}: mode must be \"local\" or \"remote\", not {self.mode!r}.")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or not 1 <= self.workers <= 64:
            raise ConfigError(f"{source}: workers must be an integer from 1 to 64, not {self.workers!r}.")
        for name in ("keep", "host_manager", "import_on_every_worker"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{source}: {name} must be True or False, not {getattr(self, name)!r}.")
        if self.auth not in ("key", "password"):
            raise ConfigError(f"{source}: auth must be \"key\" or \"password\", not {self.auth!r}.")
        if self.image is not None and (not isinstance(self.image, str) or not self.image.strip()):
            raise ConfigError(f"{source}: image must be an image name such as msranni/nni:v3.0, not {self.image!r}.")
        if self.python is not None:
            if self.image is None:
                # Before the base image lookup, so that an unsupported Python gets its reason.
                versions.check_supported(self.nni_version, python_version=self.python)
            versions.base_image_for_python(self.python)
        if self.image is None:
            versions.check_supported(self.nni_version, base_image=self.resolved_base_image(), python_version=self.python)
        if self.gpus is not None and not _valid_gpus(self.gpus):
            raise ConfigError(
                f"{source}: gpus must be \"all\", a count, or device ids such as \"0,1\" or \"GPU-<uuid>\", "
                f"not {self.gpus!r}."
            )

    def device_requests(self) -> list[dict[str, Any]] | None:
        """Return Docker device requests for ``gpus``, as ``docker run --gpus`` sends them."""
        if self.gpus is None:
            return None
        # "compute" and "utility" make the NVIDIA runtime mount CUDA and nvidia-smi into
        # images that do not set NVIDIA_DRIVER_CAPABILITIES, such as the Debian base
        # images. NNI's GPU scheduler runs nvidia-smi.
        request: dict[str, Any] = {"driver": "nvidia", "capabilities": [["gpu", "compute", "utility"]]}
        if isinstance(self.gpus, int):
            request["count"] = self.gpus
        elif self.gpus.strip() == "all":
            request["count"] = -1
        else:
            request["device_ids"] = [part.strip() for part in self.gpus.split(",") if part.strip()]
        return [request]

    def cell(self) -> str:
        """Return a short name of the NNI x Python cell, for test ids and summaries."""
        python = self.python or versions.python_of_base(self.resolved_base_image()) or "?"
        return f"nni{self.nni_version}-py{python}"


def parse_seconds(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{option} must be a number of seconds, not {text!r}.") from None
    return value


_GPU_ID = re.compile(r"^(\d+|GPU-[0-9A-Fa-f-]+|MIG-[0-9A-Za-z/-]+)$")


def _valid_gpus(gpus: object) -> bool:
    """Return True for the forms ``docker run --gpus`` takes: "all", a count, or device ids."""
    if isinstance(gpus, bool):
        return False
    if isinstance(gpus, int):
        return gpus >= -1
    if not isinstance(gpus, str) or not gpus.strip():
        return False
    if gpus.strip() == "all":
        return True
    return all(_GPU_ID.match(part.strip()) for part in gpus.split(","))
