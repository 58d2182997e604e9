"""What differs between the NNI releases this plugin supports, in one place.

Every place that behaves differently for NNI 2.10 and 3.0 asks this module: the
pinned dependencies of each image, which Python versions a release runs on, where
trial logs live, how remote mode connects back, and the parameter bug of 3.0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_nni_docker.errors import ConfigError

DEFAULT_NNI_VERSION = "3.0"


@dataclass(frozen=True)
class NniRelease:
    """Facts about one NNI release, read from its source and checked in containers."""

    version: str
    python_versions: tuple[str, ...]
    # Local trials write stdout/stderr under this folder of the experiment folder.
    local_trial_dir: str
    local_stdout: str
    local_stderr: str
    # 2.10 answers 500 on GET /trial-file for remote trials.
    remote_trial_file_endpoint: bool
    # 3.0 may attach another trial's parameters to a trial record when
    # trialConcurrency > 1: join metrics on their parameterId instead.
    parameters_bug: bool
    # 2.10 remote runs in reuse mode by default and its workers connect back on
    # the REST port + 1. 3.0 workers connect back on the REST port.
    remote_reuse_default: bool
    remote_callback_port_offset: int
    # How often the manager's main loop runs, in seconds.
    manager_loop_seconds: float


# Pins per (NNI, Python) cell, read with `pip freeze` from images that ran the
# example experiment, built with only numpy<2 given. Pinning every dependency makes
# an image install the same way every time. A cell with no pins gets numpy<2 only:
# NNI 2.10 and 3.0 use numpy APIs that numpy 2 removed.
_LOOSE_CONSTRAINTS = "numpy<2\n"

_PINS_3_0_PY311 = """\
astor==0.8.1
certifi==2026.10.19.post1
charset-normalizer==3.5.3
cloudpickle==3.1.3
colorama==0.4.6
filelock==3.11.0
idna==3.20
joblib==1.6.0
json-tricks==3.17.3
narwhals==2.29.0
numpy==1.26.4
nvidia-ml-py==13.615.71
packaging==26.4
pandas==3.0.6
prettytable==3.19.0
psutil==7.2.2
python-dateutil==4.0.0
PythonWebHDFS==0.2.3
PyYAML==6.0.4
requests==2.34.2
responses==0.26.3
schema==0.7.8
scikit-learn==1.9.1
scipy==1.17.1
simplejson==4.3.0
threadpoolctl==3.8.0
tqdm==4.70.1
typeguard==4.1.2
typing_extensions==4.16.0
tzdata==2026.6
urllib3==2.8.0
wcwidth==0.9.4
websockets==17.4
"""

_PINS_2_10_PY39 = """\
astor==0.8.1
certifi==2026.10.19.post1
charset-normalizer==3.5.3
cloudpickle==3.1.3
colorama==0.4.6
filelock==3.11.0
idna==3.20
joblib==1.5.3
json-tricks==3.17.3
numpy==1.26.4
packaging==26.3
pandas==2.3.3
prettytable==3.16.0
psutil==7.2.2
python-dateutil==3.0.0
PythonWebHDFS==0.2.3
pytz==2026.6
pyyaml==6.0.3
requests==2.32.5
responses==0.26.3
schema==0.7.8
scikit-learn==1.6.1
scipy==1.13.1
simplejson==4.3.0
six==1.17.0
threadpoolctl==3.7.0
tqdm==4.70.1
typeguard==2.13.3
typing-extensions==4.16.0
tzdata==2026.6
urllib3==2.6.3
wcwidth==0.9.4
websockets==15.0.1
"""

RELEASES: dict[str, NniRelease] = {
    "3.0": NniRelease(
        version="3.0",
        python_versions=("3.8", "3.9", "3.10", "3.11"),
        local_trial_dir="environments/local-env/trials/{trial}",
        local_stdout="trial.stdout",
        local_stderr="trial.stderr",
        remote_trial_file_endpoint=True,
        parameters_bug=True,
        remote_reuse_default=False,
        remote_callback_port_offset=0,
        manager_loop_seconds=0.5,
    ),
    "2.10.1": NniRelease(
        version="2.10.1",
        python_versions=("3.7", "3.8", "3.9", "3.10", "3.11"),
        local_trial_dir="trials/{trial}",
        local_stdout="stdout",
        local_stderr="stderr",
        remote_trial_file_endpoint=False,
        parameters_bug=False,
        remote_reuse_default=True,
        remote_callback_port_offset=1,
        manager_loop_seconds=5.0,
    ),
}
RELEASES["2.10"] = RELEASES["2.10.1"]

PINNED_CONSTRAINTS: dict[tuple[str, str], str] = {
    ("3.0", "3.11"): _PINS_3_0_PY311,
    ("2.10.1", "3.9"): _PINS_2_10_PY39,
}

# Python version of the Debian suites that base images are bootstrapped from.
DEBIAN_PYTHON = {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13"}


def release(nni_version: str) -> NniRelease:
    """Return the facts for ``nni_version``, or raise ``ConfigError`` naming the supported ones."""
    normalized = nni_version.strip()
    if normalized in RELEASES:
        return RELEASES[normalized]
    supported = ", ".join(sorted({r.version for r in RELEASES.values()}))
    raise ConfigError(f"NNI version {nni_version!r} is not supported. Use one of: {supported}.")


def constraints_for(nni_version: str, python_version: str | None) -> str:
    """Return the pip constraints for an image of ``nni_version`` on ``python_version``."""
    key = (release(nni_version).version, python_version or "")
    return PINNED_CONSTRAINTS.get(key, _LOOSE_CONSTRAINTS)


def python_of_base(base_image: str) -> str | None:
    """Return the Python version a known Debian base image provides, or None when unknown."""
    for suite, python in DEBIAN_PYTHON.items():
        if re.search(rf"(^|[:/-]){suite}($|[:/-])", base_image):
            return python
    match = re.search(r"python:?(\d\.\d+)", base_image)
    return match.group(1) if match else None


def check_supported(nni_version: str, base_image: str | None = None, python_version: str | None = None) -> None:
    """Raise ``ConfigError`` when NNI ``nni_version`` does not run on the base image's Python."""
    facts = release(nni_version)
    python = python_version or (python_of_base(base_image) if base_image else None)
    if python is None:
        return
    if python not in facts.python_versions:
        cell = f"NNI {facts.version} on Python {python}" + (f" ({base_image})" if base_image else "")
        raise ConfigError(
            f"{cell} is not supported: NNI {facts.version} runs on Python "
            f"{', '.join(facts.python_versions)}. Choose another base image or NNI version."
        )


def base_image_for_python(python_version: str) -> str:
    """Return the bootstrapped Debian base image that provides ``python_version``."""
    for suite, python in DEBIAN_PYTHON.items():
        if python == python_version:
            return f"pytest-nni-docker/debian:{suite}"
    known = ", ".join(f"{python} ({suite})" for suite, python in DEBIAN_PYTHON.items())
    raise ConfigError(f"No Debian base image provides Python {python_version}. Known: {known}. Pass --nni-base-image instead.")
