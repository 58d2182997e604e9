"""Exceptions raised by pytest-nni-docker. Each message names the value and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_nni_docker.results import ExperimentResult


class NniDockerError(Exception):
    """Base class of every error this package raises on purpose."""


class DockerUnavailableError(NniDockerError):
    """The Docker daemon cannot be reached."""


class ConfigError(NniDockerError):
    """The experiment config or an option is invalid. Raised before any container starts."""


class ImageError(NniDockerError):
    """An image is missing, cannot be pulled, or failed to build."""


class ContainerError(NniDockerError):
    """A container failed to start or to run a command."""


class ExperimentFailed(NniDockerError):
    """The experiment ended in a way that is not a normal finish.

    ``reason`` names the end state (``error``, ``manager_died``, ``no_progress``,
    ``timeout``, ``submit_failed``); ``evidence`` maps a title to a text block
    (log tails, trial stderr) that the pytest layer adds to the report.
    ``result`` is the partial ``ExperimentResult`` that the runner collected
    before it removed the manager (trials, metrics and logs it could still read,
    ``end_reason`` set to ``reason``), or None when nothing could be read.
    """

    def __init__(self, message: str, reason: str, evidence: dict[str, str] | None = None):
        super().__init__(message)
        self.reason = reason
        self.evidence = evidence or {}
        self.result: ExperimentResult | None = None
