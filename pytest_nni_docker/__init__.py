"""Run NNI experiments in Docker containers from pytest tests.

Everything below the pytest layer (``plugin``) works without pytest:
``ExperimentRunner`` starts a manager container, submits an experiment and
returns an ``ExperimentResult``.
"""

from pytest_nni_docker.errors import (
    ConfigError,
    DockerUnavailableError,
    ExperimentFailed,
    ImageError,
    NniDockerError,
)
from pytest_nni_docker.matrix import cells
from pytest_nni_docker.results import ExperimentResult, Trial  # noqa: E402
from pytest_nni_docker.versions import SUPPORTED_CELLS, Cell

__all__ = [
    "SUPPORTED_CELLS",
    "Cell",
    "ConfigError",
    "DockerUnavailableError",
    "ExperimentFailed",
    "ExperimentResult",
    "ImageError",
    "NniDockerError",
    "Trial",
    "cells",
]

__version__ = "0.1.0"
