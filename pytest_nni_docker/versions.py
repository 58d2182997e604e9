"""What differs between the NNI releases this plugin supports, in one place.

Every place that behaves differently for NNI 2.10 and 3.0 calls this module: the
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
    # 2.10 returns HTTP 500 on GET /trial-file for remote trials.
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

    def trial_file_name(self, name: str) -> str:
        """Return the file name of a trial's ``stdout``, ``stderr`` or ``trial.log`` in its trial folder.

        The names are the same for local trials and on remote workers.
        """
        return {"stdout": self.local_stdout, "stderr": self.local_stderr}.get(name, name)

    def local_trial_file(self, experiment_id: str, trial_id: str, name: str) -> str:
        """Return the path in the manager container of a local trial's ``stdout``, ``stderr`` or ``trial.log``."""
        folder = f"/root/nni-experiments/{experiment_id}/" + self.local_trial_dir.format(trial=trial_id)
        return f"{folder}/{self.trial_file_name(name)}"

    def serves_trial_files(self, mode: str) -> bool:
        """Return whether GET /trial-file returns trial logs in ``mode`` ("local" or "remote")."""
        return mode == "local" or self.remote_trial_file_endpoint

    def callback_port(self, rest_port: int) -> int:
        """Return the manager port that remote workers connect back to."""
        return rest_port + self.remote_callback_port_offset

    def python_problem(self, python_version: str) -> str | None:
        """Return why this release does not run on ``python_version`` ("3.11"), or None when it does."""
        parts = python_version.split(".")
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            return f"{python_version!r} is not a Python version such as 3.11"
        python = (int(parts[0]), int(parts[1]))
        if python < (3, 7):
            return f"the nni {self.version} wheel requires Python >= 3.7"
        if self.version == "3.0" and python == (3, 7):
            return "NNI 3.0 imports typing.TypedDict and typing.get_origin, which Python 3.8 added"
        if python >= (3, 12):
            # NOTE: read from NNI's source (nnictl.py imports pkg_resources), not run:
            # the Debian suites used for base images give 3.9, 3.11 and 3.13.
            return (f"nnictl of NNI {self.version} imports pkg_resources from setuptools, which NNI does not declare "
                    f"and virtual environments of Python 3.12 and later no longer contain")
        if python_version not in self.python_versions:
            return f"NNI {self.version} is not known to run on Python {python_version}"
        return None


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

_PINS_3_0_PY39 = """\
astor==0.8.1
certifi==2026.10.19.post1
charset-normalizer==3.5.3
cloudpickle==3.1.3
colorama==0.4.6
filelock==3.11.0
idna==3.20
importlib-metadata==8.7.1
joblib==1.5.3
json-tricks==3.17.3
numpy==1.26.4
nvidia-ml-py==13.615.71
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
typeguard==4.1.2
typing-extensions==4.16.0
tzdata==2026.6
urllib3==2.6.3
wcwidth==0.9.4
websockets==15.0.1
zipp==3.23.1
"""

_PINS_2_10_PY311 = """\
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
typeguard==2.13.3
typing_extensions==4.16.0
tzdata==2026.6
urllib3==2.8.0
wcwidth==0.9.4
websockets==17.4
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
    ("3.0", "3.9"): _PINS_3_0_PY39,
    ("2.10.1", "3.11"): _PINS_2_10_PY311,
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
    """Raise ``ConfigError`` when NNI ``nni_version`` does not run on the base image's Python.

    A base image whose Python version is unknown passes: its build shows the truth.
    """
    facts = release(nni_version)
    python = python_version or (python_of_base(base_image) if base_image else None)
    if python is None:
        return
    problem = facts.python_problem(python)
    if problem is not None:
        cell = f"NNI {facts.version} on Python {python}" + (f" ({base_image})" if base_image else "")
        tested = ", ".join(cell.name for cell in SUPPORTED_CELLS if cell.nni_version == facts.version)
        raise ConfigError(
            f"{cell} is not supported: {problem}. NNI {facts.version} runs on Python "
            f"{', '.join(facts.python_versions)}; tested cells: {tested}. Choose another base image, --nni-python or NNI version."
        )


@dataclass(frozen=True)
class Cell:
    """One NNI version on one Python version in the containers, such as ``nni3.0-py3.11``."""

    nni_version: str
    python: str

    @property
    def name(self) -> str:
        return f"nni{self.nni_version}-py{self.python}"

    @property
    def base_image(self) -> str:
        return base_image_for_python(self.python)


# The cells that ran the example experiment in local mode on a Debian base image,
# and whose dependencies are pinned above.
SUPPORTED_CELLS: tuple[Cell, ...] = tuple(Cell(nni, python) for nni, python in PINNED_CONSTRAINTS)


def describe_pythons() -> str:
    """Return the container Pythons of the supported cells with their Debian suites, such as "3.9 (bullseye)"."""
    pythons = sorted({cell.python for cell in SUPPORTED_CELLS}, key=lambda text: tuple(int(part) for part in text.split(".")))
    return ", ".join(f"{python} ({base_image_for_python(python).rsplit(':', 1)[1]})" for python in pythons)


def cell_by_name(name: str) -> Cell:
    """Return the supported cell named ``name`` ("nni3.0-py3.11"), or raise ``ConfigError``."""
    for cell in SUPPORTED_CELLS:
        if cell.name == name.strip():
            return cell
    known = ", ".join(cell.name for cell in SUPPORTED_CELLS)
    raise ConfigError(f"Unknown NNI cell {name!r}. Known cells: {known}.")


def base_image_for_python(python_version: str) -> str:
    """Return the bootstrapped Debian base image that provides ``python_version``."""
    for suite, python in DEBIAN_PYTHON.items():
        if python == python_version:
            return f"pytest-nni-docker/debian:{suite}"
    known = ", ".join(f"{python} ({suite})" for suite, python in DEBIAN_PYTHON.items())
    raise ConfigError(f"No Debian base image provides Python {python_version}. Known: {known}. Pass --nni-base-image instead.")
