"""Manager containers and worker pools shared by the tests of one session (``--nni-reuse-manager``).

Starting a manager container for every experiment costs a container start and a
removal. With reuse, the tests of a session whose image and GPU settings match
run their experiments in one container. Each experiment stays isolated there:

- its own folder (``/nni/runs/N``) for the trial code and the config,
- its own REST port, one of ``SLOT_PORTS``, published on the loopback address
  when the container starts (published ports cannot change afterwards),
- its own NNI experiment folder (``/root/nni-experiments/ID``), as NNI gives
  every experiment a new id.

When a run ends, ``Lease.release`` kills the experiment's manager process group
and its descendants with SIGKILL, so nothing waits for NNI's 60 s shutdown limit,
then deletes both folders. The container goes at the end of the session.

Remote-mode tests share worker pools the same way: a test whose pool settings
match those of a finished test gets that test's pool, and its experiments run in a
shared manager container on the pool's network. A pool serves one test at a time.
When the test ends, every process on the workers but sshd is killed and the
workers' experiment folders are deleted. A pool that lost a worker is removed
instead. Other changes a test makes to a worker's files stay for the next test.

The keep option and a manager on this host always get containers of their own:
a kept container must belong to one failed test.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import re
import threading
from dataclasses import dataclass, replace
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from docker.models.networks import Network

from pytest_nni_docker.config import CONTAINER_ROOT, PreparedExperiment
from pytest_nni_docker.containers import NniContainer
from pytest_nni_docker.engine import Engine
from pytest_nni_docker.errors import ContainerError

if TYPE_CHECKING:
    from pytest_nni_docker.pool import RemotePool

logger = logging.getLogger(__name__)

# The container ports that experiments in a shared manager listen on, one per
# concurrent experiment. A run that finds all of them busy starts another shared container.
SLOT_PORTS = (8080, 8081, 8082, 8083)
RUNS_ROOT = f"{CONTAINER_ROOT}/runs"
EXPERIMENTS_DIR = "/root/nni-experiments"

# Run by python3 in the shared container with a REST port as argument: SIGKILL
# the NNI manager listening on that port, its process group and all its
# descendants, and wait until they are gone. It prints JSON with the experiment
# ids of the killed managers, the number of killed processes and any survivors.
# PID 1 (the init process) and its process group are never touched.
_STOP_SCRIPT = r"""
import json, os, signal, sys, time
port = sys.argv[1]

def processes():
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                argv = handle.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        table[int(name)] = (fields[0], int(fields[1]), int(fields[2]), argv)
    return table

table = processes()
protected_group = table.get(1, ("", 0, 1, []))[2]
managers = [pid for pid, (_, _, _, argv) in table.items()
            if any(arg.endswith("main.js") for arg in argv) and "--port" in argv and argv[argv.index("--port") + 1:][:1] == [port]]
experiment_ids = [argv[argv.index("--experiment-id") + 1] for pid, (_, _, _, argv) in table.items()
                  if pid in managers and "--experiment-id" in argv[:-1]]
groups = {table[pid][2] for pid in managers} - {0, protected_group}
victims = set(managers) | {pid for pid, (_, _, group, _) in table.items() if group in groups}
while True:
    children = {pid for pid, (_, parent, _, _) in table.items() if parent in victims} - victims
    if not children:
        break
    victims |= children
victims -= {1, os.getpid()}
for pid in victims:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
deadline, alive = time.monotonic() + 10, sorted(victims)
while alive and time.monotonic() < deadline:
    table = processes()
    alive = [pid for pid in alive if pid in table and table[pid][0] != "Z"]
    if alive:
        time.sleep(0.02)
print(json.dumps({"experiment_ids": experiment_ids, "killed": len(victims), "alive": alive}))
"""


def add_options(group: Any, parser: pytest.Parser) -> None:
    """Register ``--nni-reuse-manager`` and its ini key ``nni_reuse_manager``."""
    group.addoption("--nni-reuse-manager", dest="nni_reuse_manager", action="store_true", default=None,
                    help="share containers between tests: local-mode tests with the same image run in one manager "
                         "container, each experiment with its own folder and REST port; remote-mode tests with the "
                         "same pool settings take one worker pool in turn (not with --nni-keep)")
    parser.addini("nni_reuse_manager", "share manager containers and worker pools between tests with the same settings",
                  type="bool", default=False)


def _rebase_text(text: str, root: str) -> str:
    """Replace the folder ``CONTAINER_ROOT`` in a path or shell command by ``root``."""
    return re.sub(rf"(?<![\w/.-]){re.escape(CONTAINER_ROOT)}(?=/|\s|$)", root, text)


@dataclass
class Lease:
    """One experiment's slot in a shared manager container: a REST port and a folder."""

    shared: SharedManager
    port: int
    root: str

    @property
    def manager(self) -> NniContainer:
        return self.shared.container

    @property
    def config_path(self) -> str:
        return f"{self.root}/config.yml"

    def rebase(self, prepared: PreparedExperiment) -> PreparedExperiment:
        """Return ``prepared`` with every folder under ``CONTAINER_ROOT`` moved to this lease's folder."""
        config = copy.deepcopy(prepared.config)
        for key in ("trialCodeDirectory", "trialCommand"):
            if isinstance(config.get(key), str):
                config[key] = _rebase_text(config[key], self.root)
        for key in ("tuner", "assessor", "advisor"):
            section = config.get(key)
            if isinstance(section, dict) and isinstance(section.get("codeDirectory"), str):
                section["codeDirectory"] = _rebase_text(section["codeDirectory"], self.root)
        uploads = {_rebase_text(target, self.root): source for target, source in prepared.uploads.items()}
        return replace(prepared, config=config, uploads=uploads)

    def release(self) -> None:
        """Stop this slot's experiment at once, delete its folders, and free the port for the next run."""
        try:
            code, output = self.manager.exec(["python3", "-c", _STOP_SCRIPT, str(self.port)])
            report = json.loads(output.strip().splitlines()[-1]) if code == 0 and output.strip() else {}
        except (ContainerError, ValueError) as error:
            logger.warning("Stopping the experiment on port %d in %s failed: %s. Later runs use a new shared container.",
                           self.port, self.manager.name, error)
            self.shared.retire()
            return
        if report.get("alive"):
            logger.warning("Processes %s of the experiment on port %d in %s survived SIGKILL. Later runs use a new shared container.",
                           report["alive"], self.port, self.manager.name)
            self.shared.retire()
            return

        # _latest is a link nnictl makes to the newest experiment folder; a dangling one makes it warn.
        folders = [self.root, f"{EXPERIMENTS_DIR}/_latest", *(f"{EXPERIMENTS_DIR}/{experiment}" for experiment in report.get("experiment_ids", []))]
        code, output = self.manager.exec(["rm", "-rf", "--", *folders])
        if code != 0:
            logger.warning("Deleting %s in %s failed: %s", " ".join(folders), self.manager.name, output.strip())
        logger.debug("Released port %d in %s: killed %s processes, deleted %s",
                     self.port, self.manager.name, report.get("killed"), " ".join(folders))
        self.shared.give_back(self.port)


class SharedManager:
    """One shared manager container and its free REST ports."""

    def __init__(self, engine: Engine, image: str, name: str, device_requests: list[dict] | None,
                 network: Network | None = None):
        # On a pool's network the workers reach the manager by its alias.
        self.container = NniContainer(
            engine, image, name, engine.labels("shared-manager"), publish=SLOT_PORTS,
            command=["sleep", "infinity"], device_requests=device_requests,
            network=network, aliases=("nni-manager",) if network is not None else (),
        )
        self.network_name = network.name if network is not None else ""
        self._free = list(SLOT_PORTS)
        self._runs = itertools.count(1)
        self._lock = threading.Lock()
        self.retired = False

    def try_lease(self) -> Lease | None:
        """Return a lease on a free port, or None when every port is busy or the container is retired."""
        with self._lock:
            if self.retired or not self._free:
                return None
            port = self._free.pop(0)
            return Lease(self, port, f"{RUNS_ROOT}/{next(self._runs)}")

    def give_back(self, port: int) -> None:
        with self._lock:
            self._free.append(port)

    def retire(self) -> None:
        """Take the container out of use; leases still out keep it until the session removes it."""
        with self._lock:
            self.retired = True


class SharedManagers:
    """The shared manager containers of one session, by image and GPU settings."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._managers: dict[tuple[str, str, str], list[SharedManager]] = {}
        self._names = itertools.count(1)
        self._lock = threading.Lock()

    def lease(self, image: str, device_requests: list[dict] | None, test_name: str = "",
              network: Network | None = None) -> Lease:
        """Return a slot in a running shared container of ``image``, starting a container when none has a free slot.

        With ``network`` (a shared pool's network) the container is on that network.
        """
        key = (image, json.dumps(device_requests, sort_keys=True), network.name if network is not None else "")
        with self._lock:
            managers = self._managers.setdefault(key, [])
            for shared in managers:
                if shared.retired:
                    continue
                if not shared.container.is_running():
                    logger.warning("Shared manager container %s stopped running; starting a new one.", shared.container.name)
                    shared.retire()
                    continue
                lease = shared.try_lease()
                if lease is not None:
                    logger.debug("%s reuses %s on port %d", test_name or "A run", shared.container.name, lease.port)
                    return lease

            name = f"nni-docker-{self.engine.session_id}-shared-{next(self._names)}"
            shared = SharedManager(self.engine, image, name, device_requests, network)
            shared.container.start()
            managers.append(shared)
            lease = shared.try_lease()
            assert lease is not None, "a new shared manager has every port free"
            logger.info("Started shared manager container %s for %s", name, image)
            return lease

    def remove_on_network(self, network_name: str) -> None:
        """Remove the shared containers on a network, before the network goes."""
        with self._lock:
            for key in [key for key in self._managers if key[2] == network_name]:
                for shared in self._managers.pop(key):
                    shared.container.remove()

    def close(self) -> None:
        """Remove every shared container of the session."""
        with self._lock:
            for managers in self._managers.values():
                for shared in managers:
                    shared.container.remove()
            self._managers.clear()


class SharedPools:
    """Worker pools of one session, taken in turn by the tests with the same pool settings."""

    def __init__(self, managers: SharedManagers):
        self.managers = managers
        self._idle: dict[tuple, list[RemotePool]] = {}
        self._all: list[RemotePool] = []
        self._lock = threading.Lock()

    def acquire(self, key: tuple, start: Callable[[], RemotePool], test_name: str = "") -> RemotePool:
        """Return an idle pool started with ``key``, or start one with ``start``. Only the caller uses it until ``release``."""
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if idle:
                pool = idle.pop()
                logger.debug("%s reuses the pool on network %s", test_name or "A test", pool.network_name)
                return pool
        pool = start()
        pool.shared = True
        with self._lock:
            self._all.append(pool)
        return pool

    def release(self, key: tuple, pool: RemotePool) -> None:
        """Reset the pool's workers for the next test, or remove the pool when it cannot be reused."""
        problem = pool.reset()
        if problem is None:
            with self._lock:
                self._idle.setdefault(key, []).append(pool)
            return
        logger.info("Removing the shared pool on network %s: %s", pool.network_name, problem)
        self._discard(pool)

    def _discard(self, pool: RemotePool) -> None:
        with self._lock:
            if pool in self._all:
                self._all.remove(pool)
        self.managers.remove_on_network(pool.network_name)
        pool.remove()

    def close(self) -> None:
        """Remove every pool of the session, after the shared managers on their networks."""
        with self._lock:
            pools, self._all, self._idle = list(self._all), [], {}
        for pool in pools:
            self.managers.remove_on_network(pool.network_name)
            pool.remove()
