"""Access to the Docker engine: the client, the labels on everything this package
creates, and the removal of what earlier runs left behind."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal
from urllib.parse import urlparse

import docker
import docker.errors
from docker import DockerClient
from docker.models.containers import Container

from pytest_nni_docker.errors import DockerUnavailableError

logger = logging.getLogger(__name__)

LABEL_PREFIX = "io.github.pytest-nni-docker"
LABEL_PLUGIN = f"{LABEL_PREFIX}.plugin"
LABEL_SESSION = f"{LABEL_PREFIX}.session"
LABEL_OWNER_HOST = f"{LABEL_PREFIX}.owner-host"
LABEL_OWNER_PID = f"{LABEL_PREFIX}.owner-pid"
LABEL_OWNER_START = f"{LABEL_PREFIX}.owner-start"
LABEL_ROLE = f"{LABEL_PREFIX}.role"
LABEL_TEST = f"{LABEL_PREFIX}.test"
LABEL_KEEP = f"{LABEL_PREFIX}.keep"
# A container kept for debugging with the keep option gets this suffix on its name
# at teardown. Labels cannot change after creation, and only then is it known
# whether the test failed. Stale cleanup leaves such containers alone.
KEPT_SUFFIX = "-kept"

DOCKER_HINT = (
    "Start a Docker daemon: as root on Debian or Ubuntu run `scripts/docker-up.sh` "
    "(installs docker.io when missing and starts dockerd), or point DOCKER_HOST at a running daemon."
)


def _process_start_time(pid: int) -> str:
    """Return the start time of ``pid`` in clock ticks since boot, or "" when unknown.

    Together with the pid it identifies a process even after the pid is reused.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat_file:
            fields = stat_file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    # Field 22 of /proc/PID/stat is starttime; the split above drops the first two.
    return fields[19]


def _process_alive(pid: int, start_time: str) -> bool:
    if not os.path.exists(f"/proc/{pid}"):
        return False
    return not start_time or _process_start_time(pid) == start_time


@dataclass(frozen=True)
class ContainerSummary:
    """A container as the list endpoint returns it: no inspect call per container."""

    id: str
    name: str
    labels: dict[str, str]
    state: str


def list_containers(client: DockerClient, filters: dict) -> list[ContainerSummary]:
    """List containers with one API call.

    ``client.containers.list`` inspects every container after listing them, and
    fails with NotFound when a parallel run removes one in between.
    """
    summaries = []
    for item in client.api.containers(all=True, filters=filters):
        names = item.get("Names") or [""]
        summaries.append(ContainerSummary(
            id=item["Id"], name=names[0].lstrip("/"), labels=item.get("Labels") or {}, state=item.get("State", ""),
        ))
    return summaries


@dataclass
class Engine:
    """A connection to the Docker daemon and the identity of this test session.

    ``session_id`` is written as a label on every container, network and volume
    this package creates, with the owner's host name and process id, so that a
    later run can remove what a killed run left and leave a live run's alone.
    """

    base_url: str | None = None
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @cached_property
    def client(self) -> DockerClient:
        try:
            if self.base_url:
                client = DockerClient(base_url=self.base_url, version="auto")
            else:
                client = docker.from_env(version="auto")
            client.ping()
        except (docker.errors.DockerException, OSError) as error:
            target = self.base_url or os.environ.get("DOCKER_HOST") or "the default socket"
            raise DockerUnavailableError(f"Cannot reach the Docker daemon at {target}: {error}. {DOCKER_HINT}") from error
        return client

    def check(self) -> None:
        """Raise ``DockerUnavailableError`` unless the daemon responds to a ping."""
        _ = self.client

    @property
    def docker_host(self) -> str | None:
        return self.base_url or os.environ.get("DOCKER_HOST")

    @property
    def published_host(self) -> str:
        """The address where ports published by containers are reached from this process.

        127.0.0.1 for a local daemon; the host part of a tcp:// or ssh:// DOCKER_HOST
        otherwise. The testcontainers default is not used because on a host that has a
        /.dockerenv file it returns the bridge gateway.
        """
        url = self.docker_host
        if url and not url.startswith(("unix://", "npipe://")):
            host = urlparse(url).hostname
            if host:
                return host
        return "127.0.0.1"

    @property
    def bind_address(self) -> str:
        """The host address that published ports bind to: loopback for a local daemon."""
        return "127.0.0.1" if self.published_host == "127.0.0.1" else self.published_host

    def labels(self, role: str, test: str = "") -> dict[str, str]:
        """Return the labels that mark an object as created by this session."""
        pid = os.getpid()
        labels = {
            LABEL_PLUGIN: "1",
            LABEL_SESSION: self.session_id,
            LABEL_OWNER_HOST: socket.gethostname(),
            LABEL_OWNER_PID: str(pid),
            LABEL_OWNER_START: _process_start_time(pid),
            LABEL_ROLE: role,
        }
        if test:
            labels[LABEL_TEST] = test[:200]
        return labels

    def remove_session_objects(self, keep_ids: frozenset[str] = frozenset()) -> int:
        """Remove every container, network and volume of this session; return how many.

        ``keep_ids`` contains the ids and names of objects to leave, those of failed
        tests run with the keep option.
        """
        return self._remove_matching(lambda labels: labels.get(LABEL_SESSION) == self.session_id, keep_ids)

    def remove_stale_objects(self) -> int:
        """Remove objects of earlier sessions whose owner process is gone.

        Objects owned by a live process, by another host, or kept on purpose with
        the keep option stay, so that parallel runs never remove each other's.
        """
        hostname = socket.gethostname()

        def is_stale(labels: dict[str, str]) -> bool:
            if labels.get(LABEL_OWNER_HOST) != hostname:
                return False
            try:
                pid = int(labels.get(LABEL_OWNER_PID, ""))
            except ValueError:
                return True
            return not _process_alive(pid, labels.get(LABEL_OWNER_START, ""))

        return self._remove_matching(is_stale, kept="skip")

    def remove_kept_objects(self) -> int:
        """Remove containers that the keep option left for debugging, then their networks."""
        removed = self._remove_matching(lambda labels: True, kept="only")
        return removed + self.remove_stale_objects()

    def mark_kept(self, container: Container) -> str:
        """Rename ``container`` so that stale cleanup leaves it; return its new name."""
        name = container.name if container.name.endswith(KEPT_SUFFIX) else container.name + KEPT_SUFFIX
        try:
            container.rename(name)
        except docker.errors.APIError as error:
            logger.warning("Failed to rename kept container %s: %s", container.name, error)
            return container.name
        return name

    def _remove_matching(self, predicate: Callable[[dict[str, str]], bool], keep_ids: frozenset[str] = frozenset(),
                         kept: Literal["skip", "only", "any"] = "any") -> int:
        """Remove the plugin's containers, networks and volumes whose labels match ``predicate``.

        ``kept`` selects how containers that the keep option renamed are treated:
        skipped, removed alone, or removed like the others. A network
        that a remaining container still uses stays.
        """
        removed = 0
        selector = {"label": LABEL_PLUGIN}

        for container in list_containers(self.client, selector):
            is_kept = container.name.endswith(KEPT_SUFFIX)
            if kept == "skip" and is_kept or kept == "only" and not is_kept:
                continue
            if predicate(container.labels) and container.id not in keep_ids:
                try:
                    self.client.api.remove_container(container.id, force=True, v=True)
                    removed += 1
                    logger.info("Removed container %s (%s)", container.name, container.id[:12])
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as error:
                    # 409: another process (a pytest-xdist worker) is removing it right now.
                    if error.status_code == 409 and "already in progress" in str(error):
                        logger.debug("Container %s is being removed by another process", container.name)
                    else:
                        logger.warning("Failed to remove container %s: %s", container.name, error)

        for network in self.client.networks.list(filters=selector):
            if kept == "only":
                break
            if predicate(network.attrs.get("Labels") or {}) and network.id not in keep_ids:
                try:
                    network.reload()
                    if network.attrs.get("Containers"):
                        logger.debug("Network %s is still in use; leaving it", network.name)
                        continue
                    network.remove()
                    removed += 1
                    logger.info("Removed network %s", network.name)
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as error:
                    logger.warning("Failed to remove network %s: %s", network.name, error)

        for volume in self.client.volumes.list(filters=selector):
            if kept == "only":
                break
            if predicate(volume.attrs.get("Labels") or {}):
                try:
                    volume.remove(force=True)
                    removed += 1
                    logger.info("Removed volume %s", volume.name)
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as error:
                    logger.warning("Failed to remove volume %s: %s", volume.name, error)

        return removed
