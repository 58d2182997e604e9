"""An NNI manager run from this host's own NNI installation, for remote mode.

This is the setup of NNI's Docker guide: NNI runs on the host and reaches each
worker container's SSH port published on 127.0.0.1. ``HostManager`` has the
methods of ``NniContainer`` that ``ExperimentRunner`` calls, and maps the
container paths the runner uses (``/nni/...`` and ``/root/nni-experiments``) to
a temporary folder. That folder is the manager's HOME, so its experiment
folder and nnictl's experiment registry stay out of the user's own
``~/nni-experiments``. ``remove`` stops the manager and deletes the folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_nni_docker.config import CONTAINER_ROOT
from pytest_nni_docker.errors import ContainerError
from pytest_nni_docker.polling import wait_for
from pytest_nni_docker.ssh import free_port_pair, versions_match

logger = logging.getLogger(__name__)

CONTAINER_HOME = "/root"
NNICTL_TIMEOUT = 180.0
STOP_TIMEOUT = 15.0


def host_nni_version() -> str | None:
    """Return the version of NNI installed next to this Python, or None when NNI is missing."""
    if nnictl_path() is None:
        return None
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python 3.8 has it
        return None
    try:
        return version("nni")
    except PackageNotFoundError:
        return None


def nnictl_path() -> str | None:
    """Return the nnictl of this Python's environment, or the one on PATH, or None."""
    beside = Path(sys.executable).parent / "nnictl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("nnictl")


def skip_reason(nni_version: str) -> str | None:
    """Return why a host manager cannot run NNI ``nni_version`` here, or None when it can."""
    found = host_nni_version()
    if found is None:
        return (f"NNI is not installed on this host (no nnictl next to {sys.executable} or on PATH); "
                f"install it with `pip install nni=={nni_version}` to run the manager on the host")
    if not versions_match(found, nni_version):
        return (f"this host has NNI {found} but the test needs {nni_version}; the manager and the workers must "
                f"run the same NNI version. Install nni=={nni_version} on the host or change nni_version")
    return None


class HostManager:
    """An NNI manager process on this host, behind the ``NniContainer`` methods the runner uses.

    ``redact`` removes secrets from text that the manager's output may contain.
    """

    def __init__(self, name: str, redact: Callable[[str], str] = lambda text: text):
        self.name = name
        self.redact = redact
        self.root: Path | None = None
        self.port = 0
        self.output = ""
        self._pids: list[int] = []

    @property
    def id(self) -> str:
        return f"host:{self.name}"

    @property
    def image(self) -> str:
        return f"host NNI {host_nni_version()}"

    # What the runner calls -----------------------------------------------------

    def start(self) -> HostManager:
        """Make the temporary home and pick a free REST port P with P + 1 free too."""
        if nnictl_path() is None:
            raise ContainerError(f"nnictl is not installed next to {sys.executable} or on PATH. Install NNI on this host.")
        self.root = Path(tempfile.mkdtemp(prefix=f"pytest-nni-docker-{self.name}-"))
        (self.root / "nni-experiments").mkdir()
        self.port = free_port_pair()
        logger.info("Host manager %s uses port %d and home %s", self.name, self.port, self.root)
        return self

    def host_port(self, port: int) -> int:
        return self.port

    def ip_address(self, network_name: str | None = None) -> str:
        return "127.0.0.1"

    def localize_config(self, config: dict[str, Any]) -> None:
        """Rewrite the container folders in an experiment config to this manager's folders."""
        config["trialCodeDirectory"] = self.local_path(config["trialCodeDirectory"])
        for key in ("tuner", "assessor", "advisor"):
            section = config.get(key)
            if isinstance(section, dict) and "codeDirectory" in section:
                section["codeDirectory"] = self.local_path(section["codeDirectory"])

    def local_path(self, path: str) -> str:
        """Return the host path of a path in the manager container's layout."""
        assert self.root is not None
        return _translate(path, self.root)

    def upload(self, folders: dict[str, Path]) -> None:
        """Copy each folder as ``NniContainer.upload`` does: caches and ``.nniignore`` matches stay behind."""
        from pytest_nni_docker.uploads import upload_files

        for target, source in folders.items():
            destination = Path(self.local_path(target))
            destination.mkdir(parents=True, exist_ok=True)
            for path, relative in upload_files(source):
                copied = destination / relative
                if path.is_symlink():
                    copied.unlink(missing_ok=True)
                    copied.symlink_to(os.readlink(path))
                elif path.is_dir():
                    copied.mkdir(exist_ok=True)
                else:
                    shutil.copy2(path, copied)

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        local = Path(self.local_path(path))
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text, encoding="utf-8")
        local.chmod(mode)

    def exec(self, command: list[str], user: str = "", environment: dict[str, str] | None = None,
             workdir: str | None = None) -> tuple[int, str]:
        """Run ``command`` on this host with the manager's HOME; container paths are mapped.

        ``nnictl`` runs from this host's installation with the manager's own port.
        """
        assert self.root is not None
        arguments = [_translate(argument, self.root) for argument in command]
        if arguments[0] == "nnictl":
            arguments[0] = nnictl_path() or "nnictl"
            if "--port" in arguments:
                arguments[arguments.index("--port") + 1] = str(self.port)
        env = {**os.environ, **(environment or {}), "HOME": str(self.root)}
        env.pop("NNI_CONFIG_DIR", None)
        cwd = self.local_path(workdir) if workdir else str(self.root)
        try:
            result = subprocess.run(arguments, cwd=cwd, env=env, capture_output=True, text=True, timeout=NNICTL_TIMEOUT)
        except subprocess.TimeoutExpired as error:
            return 124, f"{arguments[0]} timed out after {error.timeout:.0f} s"
        except OSError as error:
            raise ContainerError(f"Running {arguments[0]} for host manager {self.name} failed: {error}") from error
        output = result.stdout + result.stderr
        if command[0] == "nnictl":
            self.output += self.redact(output)
            self._pids = self._registered_pids()
        return result.returncode, output

    def read_file(self, path: str, max_bytes: int | None = None) -> str:
        local = Path(self.local_path(path))
        try:
            data = local.read_bytes()
        except OSError:
            return ""
        if max_bytes:
            data = data[-max_bytes:]
        return data.decode("utf-8", errors="replace")

    def is_running(self) -> bool:
        return any(_alive(pid) for pid in self._pids) or not self._pids

    def logs(self) -> str:
        return self.output

    def remove(self) -> None:
        """Stop the manager (SIGTERM, then SIGKILL after 15 s) and delete its home. Safe to call twice."""
        for pid in self._registered_pids() or self._pids:
            _terminate(pid)
        self._pids = []
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            logger.info("Removed host manager %s and its home %s", self.name, self.root)
            self.root = None

    # Helpers -------------------------------------------------------------------

    def _registered_pids(self) -> list[int]:
        """Return the manager pids from nnictl's registry in the manager's home."""
        assert self.root is not None
        registry = self.root / "nni-experiments" / ".experiment"
        try:
            experiments = json.loads(registry.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [int(entry["pid"]) for entry in experiments.values() if isinstance(entry, dict) and entry.get("pid")]


def _translate(text: str, root: Path) -> str:
    """Replace container folders in ``text`` (a path or a shell command) by their place under ``root``."""
    text = re.sub(rf"(?<![\w/.-]){re.escape(CONTAINER_HOME)}/nni-experiments", str(root / "nni-experiments"), text)
    return re.sub(rf"(?<![\w/.-]){re.escape(CONTAINER_ROOT)}(?=/|\s|$)", str(root / CONTAINER_ROOT.strip("/")), text)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _terminate(pid: int) -> None:
    """Send SIGTERM to a manager this module started, and SIGKILL to its process group when it lingers."""
    if not _alive(pid):
        return
    logger.info("Stopping host NNI manager pid %d", pid)
    try:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not _alive(pid), timeout=STOP_TIMEOUT, interval=0.2, description=f"NNI manager pid {pid} to exit")
    except ProcessLookupError:
        return
    except TimeoutError:
        logger.warning("NNI manager pid %d ignored SIGTERM for %.0f s; killing it", pid, STOP_TIMEOUT)
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
