"""Submitting an experiment to an NNI manager in a container, waiting for its end,
and collecting the result.

``ExperimentRunner.run`` is the whole flow: check the config, start a manager
container (or lease a slot in a shared one, see ``reuse``), copy the trial code
in, ``nnictl create``, poll the REST API until an end state, collect trials,
metrics and logs, and remove what it started.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import yaml

from pytest_nni_docker import versions
from pytest_nni_docker.config import CONTAINER_ROOT, PreparedExperiment, prepare_experiment
from pytest_nni_docker.containers import NniContainer, remove_network
from pytest_nni_docker.diagnosis import (
    describe_end_state,
    dispatcher_failure,
    dispatcher_hint,
    format_statistics,
    manager_crash,
    manager_error_hint,
    manager_errors,
    trial_hint,
)
from pytest_nni_docker.engine import Engine
from pytest_nni_docker.pool import redact_config, redact_error, redact_result
from pytest_nni_docker.errors import ContainerError, ExperimentFailed, NniDockerError
from pytest_nni_docker.rest import ManagerUnreachable, NniRestClient, RestError
from pytest_nni_docker.results import ACTIVE_TRIAL_STATUSES, ExperimentResult, Trial, build_trials, metric_value
from pytest_nni_docker.timing import StepClock, format_timings

logger = logging.getLogger(__name__)

MANAGER_PORT = 8080
CONFIG_PATH = f"{CONTAINER_ROOT}/config.yml"
LOG_TAIL_BYTES = 20_000
EVIDENCE_TAIL_LINES = 40
# The REST API must respond this long after nnictl create returned.
STARTUP_GRACE_SECONDS = 30.0
DISPATCHER_CHECK_SECONDS = 2.0
# Timeout of each REST request that collects the partial result of a failed
# experiment, short because the manager may be dead or hanging.
PARTIAL_REST_TIMEOUT = 3.0
TERMINAL_TRIAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"})
_counter = itertools.count(1)


@dataclass
class RunOptions:
    """How long to wait and what to keep. Times are in seconds."""

    timeout: float = 900.0
    no_progress_timeout: float = 300.0
    poll_interval: float = 0.2
    keep: bool = False
    # How long the REST API may refuse connections after it responded before the
    # manager counts as dead.
    unreachable_grace: float = 3.0

    def check(self) -> None:
        from pytest_nni_docker.errors import ConfigError

        for name in ("timeout", "no_progress_timeout", "poll_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
                raise ConfigError(f"The option {name} must be a positive number of seconds, not {value!r}.")


@dataclass
class Progress:
    """A snapshot of a running experiment, for progress lines."""

    experiment_id: str
    status: str
    trials_done: int
    trials_total: int | None
    best_metric: float | None
    elapsed: float


ProgressCallback = Callable[[Progress], None]


class TrainingService(Protocol):
    """The part of a remote-mode run that the worker pool provides."""

    network: Any
    # True for a pool that the tests of a session share. Its runs lease a shared manager on its network.
    shared: bool

    def apply(self, config: dict[str, Any], manager: NniContainer, nni_version: str) -> list[str]:
        """Write machineList and nniManagerIp into ``config``; return notes for the test log."""

    def worker_of(self, trial: dict[str, Any]) -> str | None:
        """Return the name of the worker a trial record ran on."""

    def trial_file(self, trial: Trial, experiment_id: str, name: str) -> str:
        """Return a trial's stdout, stderr or trial.log from its worker."""

    def create_manager(self, name: str) -> Any:
        """Return a manager that is not a container (one on this host), or None for a manager container."""

    def redact(self, text: str) -> str:
        """Return ``text`` with the service's secrets (SSH passwords) replaced by a marker."""

    def on_poll(self, client: NniRestClient) -> None:
        """Act on the running experiment at each poll, e.g. cancel the trials of a lost worker."""


@dataclass
class RunRecord:
    """The containers a run started and the result or error it saw, for the pytest report and cleanup."""

    test: str = ""
    manager: NniContainer | None = None
    network: Any = None
    result: ExperimentResult | None = None
    error: BaseException | None = None
    web_ui: str | None = None
    notes: list[str] = field(default_factory=list)
    # Seconds per step (container_start, code_copy, manager_start, wait, collect,
    # stop_and_remove, ...), and end_noticed_after: seconds from the last trial's
    # end to the moment polling saw the experiment finished.
    timings: dict[str, float] = field(default_factory=dict)
    # The slot in a shared manager container (reuse.Lease) when the run reused one.
    lease: Any = None


class ExperimentRunner:
    """Runs NNI experiments in manager containers of one image."""

    # The trial command of the experiment being waited on, for hints in failure reports.
    _trial_command: str = ""

    def __init__(
        self,
        engine: Engine,
        image: str,
        nni_version: str,
        options: RunOptions | None = None,
        progress: ProgressCallback | None = None,
        test_name: str = "",
        device_requests: list[dict] | None = None,
    ):
        self.engine = engine
        self.image = image
        self.nni_version = nni_version
        self.release = versions.release(nni_version)
        self.options = options or RunOptions()
        self.progress = progress
        self.test_name = test_name
        self.device_requests = device_requests
        self.records: list[RunRecord] = []
        # Set to a reuse.SharedManagers to run local experiments in a shared manager container.
        self.reuse: Any = None
        # Files that _collect read in one exec, by path in the manager container.
        self._prefetched: dict[str, str] = {}

    # The whole flow ------------------------------------------------------

    def run(
        self,
        config: str | Path | dict[str, Any],
        base_dir: str | Path | None = None,
        service: TrainingService | None = None,
        **overrides: Any,
    ) -> ExperimentResult:
        """Run the experiment ``config`` and return its result.

        ``config`` is a path to an NNI v2 YAML file or a dict; relative paths in a
        dict resolve against ``base_dir`` (default: the current folder).
        ``overrides`` replace top-level config keys, e.g. ``maxTrialNumber=4``.
        Raises ``ConfigError`` before any container starts when the config is
        invalid, and ``ExperimentFailed`` when the experiment does not finish.
        """
        self.options.check()
        mode = "remote" if service is not None else "local"
        prepared = self._prepare(config, base_dir, mode, overrides)

        record = RunRecord(test=self.test_name)
        self.records.append(record)
        number = next(_counter)
        name = f"nni-docker-{self.engine.session_id}-{number}"
        labels = self.engine.labels("manager", self.test_name)

        started = time.time()
        clock = StepClock(record.timings)
        port, config_path = MANAGER_PORT, CONFIG_PATH
        try:
            if self.reuse is not None and (service is None or service.shared):
                network = service.network if service is not None else None
                record.lease = self.reuse.lease(self.image, self.device_requests, self.test_name, network=network)
                manager, port = record.lease.manager, record.lease.port
                config_path = record.lease.config_path
                prepared = record.lease.rebase(prepared)
                record.manager = manager
                clock.lap("container_start")
            else:
                if service is not None:
                    record.network = service.network
                manager = service.create_manager(f"{name}-manager") if service is not None else None
                if manager is None:
                    # A local run needs no network of its own: only remote workers
                    # reach the manager by its alias.
                    manager = NniContainer(
                        self.engine, self.image, f"{name}-manager", labels,
                        network=record.network, aliases=("nni-manager",) if record.network is not None else (),
                        publish=(MANAGER_PORT,), command=["sleep", "infinity"], device_requests=self.device_requests,
                    )
                record.manager = manager
                manager.start()
                clock.lap("container_start")
            record.web_ui = f"http://{self.engine.published_host}:{manager.host_port(port)}"

            if service is not None:
                record.notes.extend(service.apply(prepared.config, manager, self.release.version))
            for note in record.notes:
                logger.warning("%s", note)

            clock.restart()
            manager.upload(prepared.uploads)
            manager.write_file(config_path, yaml.safe_dump(prepared.config, sort_keys=False))
            clock.lap("code_copy")
            client = NniRestClient(self.engine.published_host, manager.host_port(port))
            # What polling saw last, for the partial result when the experiment fails.
            self._seen_experiment_id = ""
            self._seen_state: dict[str, Any] = {}
            try:
                self._submit(manager, client, port, config_path)
                clock.lap("manager_start")
                self._service = service
                end_reason = self._wait(manager, client, prepared, started)
                clock.lap("wait")
                noticed = time.time()
                result = self._collect(manager, client, prepared, service, started, mode, end_reason)
                clock.lap("collect")
            except ExperimentFailed as error:
                error.result = self._partial_result(manager, port, prepared, service, started, mode, error)
                clock.lap("collect")
                raise
            finally:
                client.close()
            ends = [trial.end_time for trial in result.trials if trial.end_time]
            if ends:
                record.timings["end_noticed_after"] = noticed - max(ends)
            if service is not None:
                redact_result(result, service.redact)
            record.result = result
            return result
        except BaseException as error:
            if service is not None:
                redact_error(error, service.redact)
            record.error = error
            raise
        finally:
            # With the keep option the owner decides at teardown, after the test
            # outcome is in. A slot in a shared manager is never kept.
            if not self.options.keep or record.lease is not None:
                self.remove(record)
            logger.debug("Run timings of %s: %s", name, format_timings(record.timings))

    def remove(self, record: RunRecord) -> None:
        """Remove a run's manager container and its own network, or give back its slot in a shared manager."""
        clock = StepClock(record.timings)
        if record.lease is not None:
            record.lease.release()
            record.lease = None
            record.manager = None
        if record.manager is not None:
            record.manager.remove()
        if record.network is not None and record.network.attrs.get("Labels", {}).get("io.github.pytest-nni-docker.role") == "network":
            remove_network(record.network)
        clock.lap("stop_and_remove")

    # Steps -----------------------------------------------------------------

    def _prepare(self, config: Any, base_dir: Any, mode: str, overrides: dict[str, Any]) -> PreparedExperiment:
        from pytest_nni_docker.config import load_config

        if overrides:
            data, source, base = load_config(config, Path(base_dir) if base_dir else None)
            data.update(overrides)
            return prepare_experiment(data, base_dir=base, platform=mode)
        return prepare_experiment(config, base_dir=Path(base_dir) if base_dir else None, platform=mode)

    def _submit(self, manager: NniContainer, client: NniRestClient, port: int = MANAGER_PORT,
                config_path: str = CONFIG_PATH) -> None:
        """Start the manager with ``nnictl create`` and wait until its REST API responds."""
        command = ["nnictl", "create", "--config", config_path, "--port", str(port)]
        code, output = manager.exec(command, workdir=str(PurePosixPath(config_path).parent))
        logger.debug("nnictl create output:\n%s", output)
        failed = code != 0 or "ERROR" in output and "Web portal URLs" not in output
        if failed:
            evidence = {"nnictl create output": output.strip()}
            if "command not found" in output or "executable file not found" in output:
                message = (f"nnictl is not on PATH in image {self.image}. Use an image with NNI installed, "
                           "or drop --nni-image to let the plugin build one.")
            elif "is not idle" in output or "Address already in use" in output:
                # nnictl checks the port itself before it starts the manager.
                message = (f"Port {port} in manager container {manager.name} is in use by another process, so the NNI "
                           f"manager cannot listen on it. Image {self.image} starts a program on that port; use an image "
                           "whose entrypoint leaves it free, or drop --nni-image to let the plugin build one.")
            else:
                last_line = _tail(output.strip(), 1)
                message = f"nnictl create failed (exit {code}) in container {manager.name}: {last_line}\n{_tail(output, 30)}"
            raise ExperimentFailed(message, reason="submit_failed", evidence=evidence)

    def _wait(self, manager: NniContainer, client: NniRestClient, prepared: PreparedExperiment, started: float) -> str:
        """Poll until the experiment ends; return why it counts as finished or raise ``ExperimentFailed``."""
        options = self.options
        self._trial_command = prepared.config.get("trialCommand", "")
        deadline = started + options.timeout
        last_change = time.monotonic()
        last_fingerprint: tuple = ()
        last_answer: float | None = None
        waiting_since = time.monotonic()
        first_http_error: float | None = None
        last_dispatcher_check = 0.0
        seen_running = False
        last_metrics_poll = 0.0
        metric_count = 0
        best: float | None = None
        experiment_id = ""
        status = "UNKNOWN"

        while True:
            now = time.monotonic()
            try:
                state = client.check_status(timeout=5)
                status = state.get("status", "UNKNOWN")
                self._seen_state = state
                last_answer = now
                if status == "ERROR":
                    errors = "; ".join(str(e) for e in state.get("errors") or []) or "no message"
                    raise self._failure(manager, client, experiment_id,
                                        f"NNI reported ERROR: {errors}. This is a failure of NNI itself (tuner, assessor, "
                                        "dispatcher or training service), not of a trial. See nnimanager.log and "
                                        "dispatcher.log below.", "error")
                if status in ("STOPPING", "STOPPED"):
                    # The plugin stops an experiment only after this loop, so NNI stopped it
                    # by itself, as it does when its training service fails to start.
                    raise self._failure(manager, client, experiment_id,
                                        f"NNI stopped the experiment by itself (status {status}) before it finished. "
                                        "See nnimanager.log below.", "stopped")
                if status == "INITIALIZING":
                    stats = {}
                else:
                    seen_running = True
                    stats = client.job_statistics()
                    if not experiment_id:
                        experiment_id = client.experiment().get("id", "")
                        self._seen_experiment_id = experiment_id
                if seen_running and now - last_metrics_poll >= 1.0:
                    last_metrics_poll = now
                    metrics = client.metric_data()
                    metric_count = len(metrics)
                    best = _best_of(metrics, prepared.optimize_mode)
                if seen_running and now - last_dispatcher_check >= DISPATCHER_CHECK_SECONDS:
                    last_dispatcher_check = now
                    self._check_dispatcher(manager, client, experiment_id)
                first_http_error = None
            except ManagerUnreachable as error:
                if last_answer is None:
                    if now - waiting_since > STARTUP_GRACE_SECONDS:
                        raise self._failure(manager, client, experiment_id,
                                            f"The NNI manager's REST API on {client.base_url} never responded in "
                                            f"{STARTUP_GRACE_SECONDS:.0f} s after nnictl create: {error}", "manager_died")
                elif now - last_answer > options.unreachable_grace:
                    raise self._failure(manager, client, experiment_id,
                                        f"The NNI manager stopped responding on {client.base_url} while the experiment was {status}: "
                                        "the manager process died. See nnimanager.log below.", "manager_died")
                stats = None
            except RestError as error:
                # The manager is alive but fails requests. One failed poll can be
                # a race with its own state changes, so only a run of them counts.
                first_http_error = now if first_http_error is None else first_http_error
                if now - first_http_error > options.unreachable_grace:
                    raise self._failure(manager, client, experiment_id,
                                        f"The NNI manager on {client.base_url} kept failing REST requests for "
                                        f"{now - first_http_error:.0f} s: {error}. See nnimanager.log below.", "rest_error")
                stats = None

            if stats is not None:
                if getattr(self, "_service", None) is not None:
                    self._service.on_poll(client)
                active = sum(stats.get(s, 0) for s in ACTIVE_TRIAL_STATUSES)
                done = sum(stats.get(s, 0) for s in TERMINAL_TRIAL_STATUSES)
                # Report before the end checks, so that the last line shows every trial done.
                if self.progress is not None and experiment_id:
                    self.progress(Progress(experiment_id, status, done, prepared.max_trial_number, best, time.time() - started))
                if status == "DONE":
                    return "done"
                # The manager allocates a trial's sequence id before the trial shows
                # up in the job statistics, so an experiment whose last trial is
                # being submitted can look finished for one poll.
                if (status in ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL") and active == 0
                        and sum(stats.values()) >= int(client.experiment().get("nextSequenceId") or 0)):
                    return status.lower()

                fingerprint = (status, tuple(sorted(stats.items())), metric_count)
                if fingerprint != last_fingerprint:
                    last_fingerprint = fingerprint
                    last_change = now

            if now - last_change > options.no_progress_timeout:
                statistics = format_statistics(dict(last_fingerprint[1])) if last_fingerprint else "none"
                raise self._failure(manager, client, experiment_id,
                                    f"No progress for {options.no_progress_timeout:.0f} s: the experiment stayed {status} "
                                    f"(trials: {statistics}) with no new metric. Raise no_progress_timeout "
                                    "(--nni-no-progress-timeout or the marker's no_progress_timeout=) if trials run longer "
                                    "than that without reporting a metric.", "no_progress")
            if time.time() > deadline:
                raise self._failure(manager, client, experiment_id,
                                    f"Timed out after {options.timeout:.0f} s while the experiment was {status} "
                                    f"(trials: {format_statistics(dict(last_fingerprint[1])) if last_fingerprint else 'none'}). "
                                    "Raise the timeout (--nni-timeout or the marker's timeout=) or make the experiment smaller.",
                                    "timeout")
            time.sleep(options.poll_interval)

    def _collect(self, manager: NniContainer, client: NniRestClient, prepared: PreparedExperiment,
                 service: TrainingService | None, started: float, mode: str, end_reason: str) -> ExperimentResult:
        profile = client.experiment()
        state = client.check_status()
        jobs = client.trial_jobs()
        metrics = client.metric_data()
        trials = build_trials(jobs, metrics)
        experiment_id = profile.get("id", "")
        jobs_by_id = {job["trialJobId"]: job for job in jobs}
        if service is None:
            # One exec reads every trial file and log here, instead of one exec per file.
            paths = [self.release.local_trial_file(experiment_id, trial.id, name)
                     for trial in trials for name in ("stdout", "stderr", "trial.log")]
            paths += [f"/root/nni-experiments/{experiment_id}/log/{name}" for name in ("nnimanager.log", "dispatcher.log")]
            self._prefetched = manager.read_files(paths, LOG_TAIL_BYTES) if experiment_id else {}

        for trial in trials:
            if service is not None:
                trial.worker = service.worker_of(jobs_by_id[trial.id])
            else:
                trial.worker = manager.name
            trial.stdout = self._trial_file(manager, client, service, trial, experiment_id, "stdout")
            trial.stderr = self._trial_file(manager, client, service, trial, experiment_id, "stderr")
            trial.trial_log = self._trial_file(manager, client, service, trial, experiment_id, "trial.log")

        result = self._result(
            prepared, state, mode, started,
            id=experiment_id,
            trials=trials,
            nni_version=self._manager_version(client),
            job_statistics=client.job_statistics(),
            end_reason=end_reason,
            manager_log=self._manager_log(manager, experiment_id, "nnimanager.log"),
            dispatcher_log=self._manager_log(manager, experiment_id, "dispatcher.log"),
        )
        logger.info("Experiment %s ended (%s): %s", experiment_id, end_reason, result.counts)
        return result

    def _partial_result(self, manager: NniContainer, port: int, prepared: PreparedExperiment,
                        service: TrainingService | None, started: float, mode: str,
                        error: ExperimentFailed) -> ExperimentResult | None:
        """Collect what can still be read of a failed experiment, or return None.

        It never raises, so the caller gets the original failure.
        The REST API is requested first, with short timeouts. When that fails (a
        dead manager), the result contains what polling saw and the container's logs.
        """
        client = None
        try:
            client = NniRestClient(self.engine.published_host, manager.host_port(port), timeout=PARTIAL_REST_TIMEOUT)
            result = self._collect(manager, client, prepared, service, started, mode, error.reason)
        except Exception as collect_error:  # noqa: BLE001 - must never hide the original failure
            logger.warning("Collecting the trials of failed experiment %s from its manager failed: %s",
                           self._seen_experiment_id or "(no id yet)", collect_error)
            result = self._known_result(manager, prepared, started, mode, error)
        finally:
            if client is not None:
                client.close()
        if result is not None and service is not None:
            redact_result(result, service.redact)
        return result

    def _known_result(self, manager: NniContainer, prepared: PreparedExperiment, started: float, mode: str,
                      error: ExperimentFailed) -> ExperimentResult | None:
        """Return a result without trials from what polling saw and the manager's logs, or None."""
        experiment_id = self._seen_experiment_id
        state = self._seen_state
        logs = {}
        for name in ("nnimanager.log", "dispatcher.log"):
            try:
                logs[name] = self._manager_log(manager, experiment_id, name)
            except Exception as log_error:  # noqa: BLE001 - best effort, like the REST part
                logger.warning("Reading %s of failed experiment %s failed: %s", name, experiment_id or "(no id yet)", log_error)
                logs[name] = ""
        try:
            return self._result(
                prepared, state, mode, started,
                id=experiment_id,
                trials=[],
                nni_version=self.release.version,
                end_reason=error.reason,
                manager_log=logs["nnimanager.log"],
                dispatcher_log=logs["dispatcher.log"],
            )
        except Exception as build_error:  # noqa: BLE001 - must never hide the original failure
            logger.warning("Building the partial result of failed experiment %s failed: %s",
                           experiment_id or "(no id yet)", build_error)
            return None

    def _result(self, prepared: PreparedExperiment, state: dict[str, Any], mode: str, started: float,
                **values: Any) -> ExperimentResult:
        """Build an ``ExperimentResult`` with the fields a finished and a failed run share, plus ``values``."""
        return ExperimentResult(
            status=state.get("status", "UNKNOWN"),
            optimize_mode="minimize" if prepared.optimize_mode == "minimize" else "maximize",
            mode=mode,
            image=self.image,
            config=redact_config(prepared.config),
            start_time=started,
            end_time=time.time(),
            errors=[str(e) for e in state.get("errors") or []],
            **values,
        )

    def _manager_version(self, client: NniRestClient) -> str:
        """Return the version the manager reports, such as 3.0.0, or the requested one when it cannot tell."""
        try:
            return client.version() or self.release.version
        except RestError as error:
            logger.warning("Reading the NNI version from %s failed: %s", client.base_url, error)
            return self.release.version

    # Evidence ----------------------------------------------------------------

    def _manager_log(self, manager: NniContainer, experiment_id: str, name: str) -> str:
        if not experiment_id:
            # _latest links to the newest experiment folder; a glob would also match
            # it and print the file twice.
            script = (f"f=/root/nni-experiments/_latest/log/{name}; "
                      f"[ -f \"$f\" ] || f=$(ls /root/nni-experiments/*/log/{name} 2>/dev/null | head -n 1); "
                      f"[ -n \"$f\" ] && tail -c {LOG_TAIL_BYTES} \"$f\"")
            code, output = manager.exec(["sh", "-c", script])
            return output if code == 0 else ""
        path = f"/root/nni-experiments/{experiment_id}/log/{name}"
        if path in self._prefetched:
            return self._prefetched[path]
        return manager.read_file(path, LOG_TAIL_BYTES)

    def _trial_file(self, manager: NniContainer, client: NniRestClient, service: TrainingService | None,
                    trial: Trial, experiment_id: str, name: str) -> str:
        if service is not None:
            if self.release.serves_trial_files("remote"):
                try:
                    text = client.trial_file(trial.id, name)
                except RestError:
                    text = None
                # NNI 3.0 returns HTTP 200 with this text when the trial's worker is gone.
                if text is not None and not text.startswith("NNI internal error"):
                    return text
            return service.trial_file(trial, experiment_id, name)
        path = self.release.local_trial_file(experiment_id, trial.id, name)
        if path in self._prefetched:
            return self._prefetched[path]
        return manager.read_file(path, LOG_TAIL_BYTES)

    def _check_dispatcher(self, manager: NniContainer, client: NniRestClient, experiment_id: str) -> None:
        """Raise ``ExperimentFailed`` when dispatcher.log shows that the tuner or assessor crashed.

        NNI does not change its status then: the experiment stays RUNNING with no
        new trials until a timeout.
        """
        try:
            log = client.manager_log("dispatcher.log")
        except RestError:
            log = self._manager_log(manager, experiment_id, "dispatcher.log")
        exception = dispatcher_failure(log)
        if exception is not None:
            message = (f"NNI's dispatcher failed with {exception}. This is a failure of the tuner or assessor "
                       "(NNI's own side), not of a trial: no further trial will start. "
                       "See dispatcher.log below, and fix the tuner's code or its classArgs.")
            hint = dispatcher_hint(log, self.release.parameters_bug)
            if hint:
                message += " " + hint
            raise self._failure(manager, client, experiment_id, message, "dispatcher_failed")

    def _trial_evidence(self, manager: NniContainer, client: NniRestClient, trial: Trial, experiment_id: str) -> str:
        """Return a failed trial's parameters, a hint about its cause, and the tail of its stderr."""
        try:
            stderr = client.trial_file(trial.id, "stderr")
        except RestError:
            stderr = manager.read_file(self.release.local_trial_file(experiment_id, trial.id, "stderr"), LOG_TAIL_BYTES)
        lines = [f"status: {trial.status}", f"parameters: {json.dumps(trial.parameters, sort_keys=True)}"]
        if trial.message:
            lines.append(f"message: {trial.message}")
        hint = trial_hint(stderr, self._trial_command)
        if hint:
            lines.append(f"hint: {hint}")
        lines.append("stderr (tail):")
        lines.append(_tail(stderr, EVIDENCE_TAIL_LINES) or "(empty)")
        return "\n".join(lines)

    def _failure(self, manager: NniContainer, client: NniRestClient, experiment_id: str, message: str, reason: str) -> ExperimentFailed:
        """Build an ``ExperimentFailed`` with the manager's logs and the failed trials' stderr."""
        evidence: dict[str, str] = {}
        manager_log = ""
        try:
            manager_log = self._manager_log(manager, experiment_id, "nnimanager.log")
            evidence["nnimanager.log (tail)"] = _tail(manager_log, EVIDENCE_TAIL_LINES)
            evidence["dispatcher.log (tail)"] = _tail(self._manager_log(manager, experiment_id, "dispatcher.log"), EVIDENCE_TAIL_LINES)
        except (ContainerError, NniDockerError) as error:
            evidence["manager logs"] = f"unavailable: {error}"
        if not manager.is_running():
            evidence["manager container"] = f"{manager.name} is not running. Its output:\n{_tail(manager.logs(), EVIDENCE_TAIL_LINES)}"
        try:
            state = client.check_status(timeout=5)
            statistics = client.job_statistics()
            evidence["experiment"] = "\n".join([
                f"experiment {experiment_id or '(no id yet)'}: status {state.get('status', 'UNKNOWN')}",
                f"end state: {reason} ({describe_end_state(reason)})",
                f"job statistics: {format_statistics(statistics)}",
                *(f"NNI error: {error}" for error in state.get("errors") or []),
            ])
            trials = build_trials(client.trial_jobs(), client.metric_data())
            for trial in trials:
                if trial.status in ("FAILED", "USER_CANCELED", "SYS_CANCELED"):
                    evidence[f"trial {trial.id} ({trial.status})"] = self._trial_evidence(manager, client, trial, experiment_id)
        except RestError as error:
            # A manager that died cannot be asked; its logs above are the evidence.
            evidence["experiment"] = (f"experiment {experiment_id or '(no id yet)'}: end state {reason} "
                                      f"({describe_end_state(reason)}); the REST API is unavailable: {error}")
        if reason == "manager_died":
            # The Node.js manager writes its own crash, such as an SSH login that
            # failed, to nnictl_stderr.log, not to nnimanager.log.
            try:
                stderr_log = self._manager_log(manager, experiment_id, "nnictl_stderr.log")
            except (ContainerError, NniDockerError):
                stderr_log = ""
            evidence["nnictl_stderr.log (tail)"] = _tail(stderr_log, EVIDENCE_TAIL_LINES)
            crash = manager_crash(stderr_log)
            if crash:
                message += f"\nThe manager process failed with: {crash}"
        evidence = {title: text for title, text in evidence.items() if text.strip()}
        # The errors NNI logged name the cause, such as a training service that could
        # not log in to a worker, while the log's last lines are often follow-up noise.
        errors = manager_errors(manager_log) if reason in ("stopped", "manager_died", "error") else []
        if errors:
            message += "\nErrors in nnimanager.log:\n" + "\n".join(f"  {error}" for error in errors)
            hint = manager_error_hint(errors)
            if hint and hint not in message:
                message += f"\nHint: {hint}"
        tail = evidence.get("nnimanager.log (tail)", "")
        if reason == "manager_died" and tail and not errors:
            message += "\nLast lines of nnimanager.log:\n" + _tail(tail, 10)
        return ExperimentFailed(message, reason=reason, evidence=evidence)


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _best_of(metrics: list[dict[str, Any]], optimize_mode: str) -> float | None:
    from pytest_nni_docker.results import decode_metric

    values = [metric_value(decode_metric(m.get("data", ""))) for m in metrics if m.get("type") == "FINAL"]
    numbers = [v for v in values if v is not None and not math.isnan(v)]
    if not numbers:
        return None
    return min(numbers) if optimize_mode == "minimize" else max(numbers)
