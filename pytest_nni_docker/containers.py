"""Containers and networks that run NNI, started through testcontainers.

Each container runs ``sleep infinity`` under Docker's init process, so that NNI's
processes are reaped and stopping never waits on a zombie. Published ports bind to
127.0.0.1 (or the remote daemon's address) at a port Docker picks.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO

import docker.errors
import docker.types
from docker.models.containers import Container
from docker.models.networks import Network
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from pytest_nni_docker.engine import Engine
from pytest_nni_docker.errors import ContainerError
from pytest_nni_docker.uploads import upload_files

logger = logging.getLogger(__name__)


# Run by python3 in a container: print {path: text of its last N bytes} as JSON for
# each path that is a readable file. Arguments: N, then the paths.
_READ_FILES_SCRIPT = """
import json, sys
limit, texts = int(sys.argv[1]), {}
for path in sys.argv[2:]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - limit))
            texts[path] = handle.read().decode("utf-8", "replace")
    except OSError:
        pass
print(json.dumps(texts))
"""


def configure_reaper(engine: Engine) -> None:
    """Disable the testcontainers Ryuk reaper unless its image is present.

    Ryuk is pulled from Docker Hub on first use, which fails on hosts with no
    registry. Cleanup does not rely on it: everything carries session labels. An
    explicit TESTCONTAINERS_RYUK_DISABLED in the environment is left as it is.
    """
    import os

    global _reaper_configured
    if _reaper_configured or "TESTCONTAINERS_RYUK_DISABLED" in os.environ:
        return
    _reaper_configured = True
    try:
        engine.client.images.get(testcontainers_config.ryuk_image)
    except docker.errors.ImageNotFound:
        testcontainers_config.ryuk_disabled = True
    except docker.errors.APIError:
        testcontainers_config.ryuk_disabled = True


_reaper_configured = False


class _NoPullMessage(logging.Filter):
    """Drop testcontainers' "Pulling image" record, logged before every start even when no pull happens.

    The plugin makes sure an image is present before a container starts, so the
    record only misleads, above all with --nni-no-pull.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Pulling image")


logging.getLogger("testcontainers.core.container").addFilter(_NoPullMessage())


def container_is_running(container: Container) -> bool:
    """Return True when ``container`` runs; a removed container counts as stopped."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return False
    return container.status == "running"


def create_network(engine: Engine, name: str, labels: dict[str, str]) -> Network:
    try:
        return engine.client.networks.create(name, driver="bridge", labels=labels, check_duplicate=True)
    except docker.errors.APIError as error:
        raise ContainerError(f"Creating Docker network {name} failed: {error}") from error


def remove_network(network: Network | None) -> None:
    if network is None:
        return
    try:
        network.remove()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        logger.warning("Failed to remove network %s: %s", network.name, error)


def _archive_folders(folders: dict[str, Path], archive_file: IO[bytes]) -> None:
    """Write a tar archive to ``archive_file`` that puts each host folder at its absolute container path.

    Caches, virtual environments and what each folder's ``.nniignore`` lists stay behind.
    """
    with tarfile.open(fileobj=archive_file, mode="w") as archive:
        for target, source in folders.items():
            root = PurePosixPath(target).relative_to("/")
            archive.add(str(source), arcname=str(root), recursive=False)
            for path, relative in upload_files(source):
                archive.add(str(path), arcname=str(root / relative), recursive=False)
    archive_file.seek(0)


class NniContainer:
    """One container of an experiment: a manager or an SSH worker."""

    def __init__(
        self,
        engine: Engine,
        image: str,
        name: str,
        labels: dict[str, str],
        network: Network | None = None,
        aliases: Iterable[str] = (),
        publish: Iterable[int] = (),
        environment: dict[str, str] | None = None,
        command: list[str] | None = None,
        device_requests: list[dict] | None = None,
    ):
        self.engine = engine
        self.image = image
        self.name = name
        # Also for callers outside pytest, which never run the plugin's session start.
        configure_reaper(engine)
        self._testcontainer = DockerContainer(
            image,
            docker_client_kw={"base_url": engine.base_url} if engine.base_url else None,
        )
        kwargs: dict = {"init": True, "labels": labels, "detach": True, "hostname": name[-63:]}
        if device_requests:
            kwargs["device_requests"] = [docker.types.DeviceRequest(**request) for request in device_requests]
        self._testcontainer.with_name(name).with_kwargs(**kwargs)
        if command is not None:
            self._testcontainer.with_command(command)
        if network is not None:
            self._testcontainer.with_network(network).with_network_aliases(*aliases)
        for key, value in (environment or {}).items():
            self._testcontainer.with_env(key, value)
        for port in publish:
            self._testcontainer.ports[f"{port}/tcp"] = (engine.bind_address, None)
        self._published: dict[int, int] = {}
        self._publish = tuple(publish)

    @property
    def container(self) -> Container:
        wrapped = self._testcontainer._container
        if wrapped is None:
            raise ContainerError(f"Container {self.name} has not started.")
        return wrapped

    @property
    def id(self) -> str:
        return self.container.id

    def start(self) -> NniContainer:
        try:
            self._testcontainer.start()
        except docker.errors.APIError as error:
            self.remove()
            hint = ""
            if "port is already allocated" in str(error) or "address already in use" in str(error):
                hint = " A published port is in use; free it or let Docker pick one."
            raise ContainerError(f"Starting container {self.name} from {self.image} failed: {error}.{hint}") from error
        self.container.reload()
        ports = self.container.attrs["NetworkSettings"]["Ports"] or {}
        for port in self._publish:
            bindings = ports.get(f"{port}/tcp") or []
            if not bindings:
                raise ContainerError(f"Container {self.name} published no host port for {port}/tcp.")
            self._published[port] = int(bindings[0]["HostPort"])
        logger.info("Started container %s (%s) from %s", self.name, self.container.short_id, self.image)
        return self

    def host_port(self, port: int) -> int:
        """Return the host port that container port ``port`` is published on."""
        return self._published[port]

    def ip_address(self, network_name: str | None = None) -> str:
        self.container.reload()
        networks = self.container.attrs["NetworkSettings"]["Networks"]
        if network_name:
            return networks[network_name]["IPAddress"]
        return next(iter(networks.values()))["IPAddress"]

    def is_running(self) -> bool:
        return container_is_running(self.container)

    def exec(self, command: list[str], user: str = "", environment: dict[str, str] | None = None,
             workdir: str | None = None) -> tuple[int, str]:
        """Run ``command`` in the container; return its exit code and its stdout and stderr combined."""
        try:
            result = self.container.exec_run(command, user=user, environment=environment, workdir=workdir)
        except docker.errors.APIError as error:
            raise ContainerError(f"Running {command[0]} in container {self.name} failed: {error}") from error
        return result.exit_code, result.output.decode("utf-8", errors="replace")

    def read_file(self, path: str, max_bytes: int | None = None) -> str:
        """Return the text of ``path`` in the container, or "" when it does not exist."""
        command = ["tail", "-c", str(max_bytes), path] if max_bytes else ["cat", path]
        code, output = self.exec(command)
        return output if code == 0 else ""

    def read_files(self, paths: list[str], max_bytes: int) -> dict[str, str]:
        """Return the last ``max_bytes`` of each existing file in ``paths``, by path.

        One exec of python3 reads up to 200 files, where ``read_file`` costs one
        exec per file. Without python3 in the container, or when its output
        cannot be decoded, it falls back to ``read_file``.
        """
        texts: dict[str, str] = {}
        for first in range(0, len(paths), 200):
            chunk = paths[first:first + 200]
            try:
                result = self.container.exec_run(["python3", "-c", _READ_FILES_SCRIPT, str(max_bytes), *chunk], demux=True)
                stdout = result.output[0] or b""
                if result.exit_code != 0:
                    raise ValueError(f"exit {result.exit_code}")
                texts.update(json.loads(stdout))
            except (docker.errors.APIError, ValueError) as error:
                logger.debug("Reading %d files in one exec in %s failed (%s); reading them one by one", len(chunk), self.name, error)
                for path in chunk:
                    text = self.read_file(path, max_bytes)
                    if text:
                        texts[path] = text
        return texts

    def upload(self, folders: dict[str, Path]) -> None:
        """Copy each host folder to its container path; caches, .git and ``.nniignore`` matches stay behind."""
        # The archive can reach NNI's 300 MB limit, so it goes to a temporary file, not memory.
        with tempfile.TemporaryFile() as archive_file:
            _archive_folders(folders, archive_file)
            try:
                self.container.put_archive("/", archive_file)
            except docker.errors.APIError as error:
                raise ContainerError(f"Copying files into container {self.name} failed: {error}") from error

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        buffer = io.BytesIO()
        payload = text.encode("utf-8")
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo(str(PurePosixPath(path).relative_to("/")))
            info.size = len(payload)
            info.mode = mode
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(payload))
        try:
            self.container.put_archive("/", buffer.getvalue())
        except docker.errors.APIError as error:
            raise ContainerError(f"Writing {path} into container {self.name} failed: {error}") from error

    def logs(self) -> str:
        try:
            return self.container.logs().decode("utf-8", errors="replace")
        except docker.errors.APIError:
            return ""

    def kill(self) -> None:
        try:
            self.container.kill()
        except docker.errors.APIError as error:
            logger.warning("Failed to kill container %s: %s", self.name, error)

    def stop(self, timeout: int = 5) -> None:
        try:
            self.container.stop(timeout=timeout)
        except docker.errors.APIError as error:
            logger.warning("Failed to stop container %s: %s", self.name, error)

    def remove(self) -> None:
        """Remove the container and its anonymous volumes; a missing container is fine."""
        wrapped = self._testcontainer._container
        if wrapped is None:
            return
        try:
            wrapped.remove(force=True, v=True)
            logger.info("Removed container %s", self.name)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            logger.warning("Failed to remove container %s: %s", self.name, error)
