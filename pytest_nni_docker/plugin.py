"""The pytest layer: options, the ``nni_docker`` marker, fixtures and report sections.

Everything here is thin glue over ``experiment``, ``images`` and ``engine``.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_nni_docker import matrix, versions
from pytest_nni_docker import reuse
from pytest_nni_docker.containers import NniContainer, configure_reaper
from pytest_nni_docker.engine import Engine
from pytest_nni_docker.errors import ConfigError, DockerUnavailableError, ExperimentFailed
from pytest_nni_docker.experiment import ExperimentRunner, Progress, RunOptions, RunRecord
from pytest_nni_docker.images import ImageBuilder, ImageSpec
from pytest_nni_docker.reporting import SummaryRow
from pytest_nni_docker.results import ExperimentResult
from pytest_nni_docker.ssh import remove_stale_key_folders
from pytest_nni_docker.settings import DEFAULT_BASE_IMAGE, Settings, parse_seconds

logger = logging.getLogger(__name__)

MARKER = "nni_docker"
records_key = pytest.StashKey[list[RunRecord]]()
# Summary rows and kept-container messages of one test, sent with its teardown report.
summary_rows_key = pytest.StashKey[list[SummaryRow]]()
kept_messages_key = pytest.StashKey[list[str]]()
# Names of the user properties that carry them to the pytest-xdist controller.
SUMMARY_PROPERTY = "nni_docker_experiment"
KEPT_PROPERTY = "nni_docker_kept"
call_failed_key = pytest.StashKey[bool]()
session_key = pytest.StashKey["NniDockerSession"]()

# (option name, ini name, help, ini default, kind)
_OPTIONS = [
    ("--nni-version", "nni_version", "NNI version inside the containers (default: %(default)s)", versions.DEFAULT_NNI_VERSION,
     "string"),
    ("--nni-image", "nni_image", "ready NNI image to use as it is, e.g. msranni/nni:v3.0; no build", "", "string"),
    ("--nni-base-image", "nni_base_image", "base image that NNI images are built on (needs python3)", DEFAULT_BASE_IMAGE, "string"),
    ("--nni-python", "nni_python", f"Python version in the containers; picks a Debian base image: {versions.describe_pythons()}",
     "", "string"),
    ("--nni-gpus", "nni_gpus", "GPUs for the containers, as docker run --gpus takes them: all, a count, or device ids "
     "such as 0,1 (default: none)", "", "string"),
    ("--nni-cells", "nni_cells", "NNI x Python cells that tests parametrized with pytest_nni_docker.cells() run: all, or "
     "names such as nni3.0-py3.11,nni2.10.1-py3.9 (default: %(default)s)", matrix.ALL_CELLS, "string"),
    ("--nni-timeout", "nni_timeout", "seconds an experiment may run before it fails (default: %(default)s)", "900", "string"),
    ("--nni-no-progress-timeout", "nni_no_progress_timeout",
     "seconds with no change of status, trials or metrics before an experiment fails", "300", "string"),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nni-docker", "NNI experiments in Docker (pytest-nni-docker)")
    for option, ini, help_text, default, kind in _OPTIONS:
        group.addoption(option, dest=ini, default=None, help=help_text.replace("%(default)s", default or "none"))
        parser.addini(ini, help_text.replace("%(default)s", default or "none"), type=kind, default=default)
    group.addoption("--nni-pip", dest="nni_pip_packages", action="append", default=None, metavar="REQUIREMENT",
                    help="extra pip requirement installed in built NNI images (repeatable)")
    parser.addini("nni_pip_packages", "extra pip requirements installed in built NNI images", type="linelist", default=[])
    group.addoption("--nni-keep", dest="nni_keep", action="store_true", default=None,
                    help="keep the containers of failed tests for debugging and print how to reach and remove them")
    parser.addini("nni_keep", "keep the containers of failed tests", type="bool", default=False)
    group.addoption("--nni-require-docker", dest="nni_require_docker", action="store_true", default=None,
                    help="fail marked tests when no Docker daemon is reachable, instead of skipping them (for CI)")
    parser.addini("nni_require_docker", "fail instead of skip without Docker", type="bool", default=False)
    group.addoption("--nni-no-pull", dest="nni_no_pull", action="store_true", default=None,
                    help="never pull images; missing images are an error")
    parser.addini("nni_no_pull", "never pull images", type="bool", default=False)
    group.addoption("--nni-results-dir", dest="nni_results_dir", default=None, metavar="DIR",
                    help="write each experiment's result as JSON to DIR, one file per experiment (for CI artifacts)")
    parser.addini("nni_results_dir", "folder for experiment results as JSON, relative to the rootdir", default="")
    group.addoption("--nni-html-report", dest="nni_html_report", default=None, metavar="DIR",
                    help="write a self-contained HTML report with charts of each experiment to DIR")
    parser.addini("nni_html_report", "folder for HTML reports of experiments, relative to the rootdir", default="")
    reuse.add_options(group, parser)


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name)
    if value is not None:
        return value
    try:
        return config.getini(name)
    except (ValueError, pytest.UsageError) as error:
        # A bool ini value such as "maybe" raises ValueError, which pytest 9 wraps in UsageError.
        raise pytest.UsageError(f"The ini key {name} is invalid: {error}. Use true or false.") from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): run NNI experiments in Docker in this test. Keyword arguments override the "
        f"--nni-* options: {', '.join(Settings.keys())}.",
    )
    config.addinivalue_line(
        "markers", f"{matrix.CELL_MARKER}(name): the NNI x Python cell of a test parametrized with pytest_nni_docker.cells()",
    )
    nni_session = NniDockerSession(config)
    config.stash[session_key] = nni_session
    # As a plugin, the session receives the test reports (pytest_runtest_logreport).
    config.pluginmanager.register(nni_session, "nni-docker-session")


def default_settings(config: pytest.Config) -> Settings:
    """Return the settings from the command line and ini file; raise ``pytest.UsageError`` when invalid."""
    try:
        settings = Settings(
            nni_version=str(_option(config, "nni_version")),
            image=_option(config, "nni_image") or None,
            base_image=_option(config, "nni_base_image") or DEFAULT_BASE_IMAGE,
            python=_option(config, "nni_python") or None,
            pip_packages=tuple(_option(config, "nni_pip_packages") or ()),
            timeout=parse_seconds(str(_option(config, "nni_timeout")), "--nni-timeout"),
            no_progress_timeout=parse_seconds(str(_option(config, "nni_no_progress_timeout")), "--nni-no-progress-timeout"),
            keep=bool(_option(config, "nni_keep")),
            allow_pull=not _option(config, "nni_no_pull"),
            gpus=_gpus(_option(config, "nni_gpus")),
        )
        settings.check("The --nni-* options")
    except ConfigError as error:
        raise pytest.UsageError(str(error)) from None
    return settings


def _gpus(text: str | None) -> str | int | None:
    """Return the --nni-gpus value as Settings takes it: None, a count, or "all" and device ids as text."""
    text = (text or "").strip()
    if not text:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        selection = matrix.parse_selection(str(_option(config, "nni_cells")))
    except ConfigError as error:
        raise pytest.UsageError(f"--nni-cells: {error}") from None
    kept, deselected = matrix.deselect(items, selection)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def settings_for(item: pytest.Item) -> Settings:
    """Return the settings of a test: the options, overridden by its marker's keyword arguments."""
    settings = item.config.stash[session_key].default_settings
    for marker in reversed(list(item.iter_markers(MARKER))):
        if marker.args:
            raise ConfigError(f"@pytest.mark.{MARKER} takes keyword arguments only, not {marker.args!r}.")
        settings = settings.merged(marker.kwargs, f"@pytest.mark.{MARKER} on {item.nodeid}")
    settings.check(f"@pytest.mark.{MARKER} on {item.nodeid}")
    return settings


class NniDockerSession:
    """The state of one pytest process: the Docker engine, built images and cleanup."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self._default_settings: Settings | None = None
        self._engine: Engine | None = None
        self._engine_error: DockerUnavailableError | None = None
        self._checked = False
        self._images: dict[tuple, str] = {}
        self._lock = threading.Lock()
        self.kept_ids: set[str] = set()
        self.results: list[tuple[str, ExperimentResult]] = []
        # Filled from test reports, so that under pytest-xdist the controller lists the workers' experiments too.
        self.summary_rows: list[SummaryRow] = []
        self.kept_messages: list[str] = []
        self._gpu_problems: dict[tuple, str | None] = {}
        self._shared_managers: reuse.SharedManagers | None = None
        self._shared_pools: reuse.SharedPools | None = None

    @property
    def default_settings(self) -> Settings:
        if self._default_settings is None:
            self._default_settings = default_settings(self.config)
        return self._default_settings

    def engine(self) -> Engine:
        """Return the engine, connecting on first use and removing stale objects of dead runs."""
        if not self._checked:
            self._checked = True
            engine = Engine()
            try:
                engine.check()
            except DockerUnavailableError as error:
                self._engine_error = error
            else:
                configure_reaper(engine)
                removed = engine.remove_stale_objects()
                if removed:
                    logger.warning("Removed %d containers, networks or volumes left by earlier runs that were killed", removed)
                remove_stale_key_folders()
                self._engine = engine
        if self._engine is None:
            assert self._engine_error is not None
            raise self._engine_error
        return self._engine

    def image_for(self, settings: Settings) -> str:
        """Return the NNI image for ``settings``: the ready image, or one built and cached."""
        engine = self.engine()
        builder = ImageBuilder(engine, progress=self.progress_line)
        if settings.image:
            key: tuple = ("ready", settings.image)
        else:
            key = ("built", settings.nni_version, settings.resolved_base_image(), settings.pip_packages)
        with self._lock:
            if key not in self._images:
                if settings.image:
                    self._images[key] = builder.ensure_ready_image(settings.image, allow_pull=settings.allow_pull)
                else:
                    spec = ImageSpec(settings.nni_version, settings.resolved_base_image(), settings.pip_packages)
                    self._images[key] = builder.ensure_nni_image(spec, allow_pull=settings.allow_pull)
            return self._images[key]

    def gpu_problem(self, settings: Settings, test: str) -> str | None:
        """Return why the containers of ``settings`` cannot get the requested GPUs, or None; probed once per image."""
        from pytest_nni_docker.gpus import gpu_problem

        requests = settings.device_requests()
        if requests is None:
            return None
        image = self.image_for(settings)
        key = (image, repr(requests))
        if key not in self._gpu_problems:
            self._gpu_problems[key] = gpu_problem(self.engine(), image, requests, test)
        return self._gpu_problems[key]

    def progress_line(self, message: str) -> None:
        """Show a progress message: on the terminal when there is one, else as a log line."""
        logger.info("%s", message)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or not reporter.isatty():
            return
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else _nothing():
            reporter.write_line(f"[nni-docker] {message}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect the experiments of a finished test from its teardown report.

        Under pytest-xdist the controller gets the workers' reports, so its table
        lists every worker's experiments.
        """
        if report.when != "teardown":
            return
        for name, value in report.user_properties:
            if name == SUMMARY_PROPERTY:
                self.summary_rows.append(SummaryRow.from_json(value))
            elif name == KEPT_PROPERTY:
                self.kept_messages.append(value)

    def shared_managers(self) -> reuse.SharedManagers:
        """Return the session's shared manager containers (``--nni-reuse-manager``)."""
        with self._lock:
            if self._shared_managers is None:
                self._shared_managers = reuse.SharedManagers(self.engine())
            return self._shared_managers

    def shared_pools(self) -> reuse.SharedPools:
        """Return the session's shared worker pools (``--nni-reuse-manager`` in remote mode)."""
        managers = self.shared_managers()
        with self._lock:
            if self._shared_pools is None:
                self._shared_pools = reuse.SharedPools(managers)
            return self._shared_pools

    def cleanup(self) -> None:
        if self._shared_pools is not None:
            self._shared_pools.close()
        if self._shared_managers is not None:
            self._shared_managers.close()
        if self._engine is not None:
            self._engine.remove_session_objects(frozenset(self.kept_ids))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def pytest_sessionstart(session: pytest.Session) -> None:
    # Turn SIGTERM into KeyboardInterrupt so that a terminated run cleans up like Ctrl-C.
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, interrupt)
    session.config.stash[session_key].default_settings  # noqa: B018 - bad options fail before collection
    # Bad bool ini values fail here too, before collection.
    _option(session.config, "nni_reuse_manager")
    _option(session.config, "nni_require_docker")


def pytest_sessionfinish(session: pytest.Session) -> None:
    nni_session = session.config.stash.get(session_key, None)
    if nni_session is None:
        return
    # A second Ctrl-C while the session's containers are removed would leave them
    # to the next run, so interrupts wait until the removal ends.
    with _interrupts_deferred():
        nni_session.cleanup()


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM inside the block, and log the ones that came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if received:
        logger.warning("Ignored signal %d until the session's containers were removed.", received[-1])


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker(MARKER) is None:
        return
    nni_session = item.config.stash[session_key]
    try:
        nni_session.engine()
    except DockerUnavailableError as error:
        if _option(item.config, "nni_require_docker"):
            pytest.fail(f"{error}", pytrace=False)
        pytest.skip(f"no Docker daemon: {error}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[call_failed_key] = report.failed
    if report.when == "teardown":
        for row in item.stash.get(summary_rows_key, []):
            report.user_properties.append((SUMMARY_PROPERTY, row.to_json()))
        for message in item.stash.get(kept_messages_key, []):
            report.user_properties.append((KEPT_PROPERTY, message))
    if report.failed and report.when in ("call", "setup"):
        for title, text in _evidence_sections(item, call):
            # The terminal prints both the failure text and report.sections, so each
            # section goes to one of them. The failure text also reaches JUnit XML.
            if hasattr(report.longrepr, "addsection"):
                report.longrepr.addsection(f"nni-docker: {title}", text)
            else:
                report.sections.append((f"nni-docker: {title}", text))
    return report


def output_dir(config: pytest.Config, name: str) -> Path | None:
    """Return the folder an output option names: relative to the current folder on the
    command line, relative to the rootdir in the ini file; None when not set."""
    value = config.getoption(name)
    if value:
        return Path(config.invocation_params.dir, value)
    value = config.getini(name)
    if value:
        return Path(config.rootpath, value)
    return None


def _file_stem(nodeid: str, number: int) -> str:
    """Return a file name for the ``number``-th experiment of test ``nodeid``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150] or "experiment"
    return stem if number == 1 else f"{stem}-{number}"


def _evidence_sections(item: pytest.Item, call: pytest.CallInfo) -> list[tuple[str, str]]:
    """Return report sections that explain a failed test's experiments."""
    from pytest_nni_docker.reporting import evidence_for_failure, evidence_for_result

    sections: list[tuple[str, str]] = []
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, ExperimentFailed):
        sections.extend(evidence_for_failure(error))
    for record in item.stash.get(records_key, []):
        if record.result is not None:
            sections.extend(evidence_for_result(record.result))
    return sections


def _check_overrides(overrides: dict[str, Any]) -> None:
    """Raise ``ConfigError`` for keyword arguments of ``run()`` that are not top-level v2 config keys."""
    import difflib

    from pytest_nni_docker.config import V2_KEYS

    for key in sorted(set(overrides) - V2_KEYS):
        close = difflib.get_close_matches(key, sorted(V2_KEYS), n=1)
        suggestion = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(
            f"nni_experiment.run() got the keyword argument {key}={overrides[key]!r}, which is not a top-level "
            f"NNI v2 config key.{suggestion} Keyword arguments of run() replace top-level config keys."
        )


class NniExperiment:
    """The ``nni_experiment`` fixture: runs experiments with the test's settings.

    ``run(config, **overrides)`` returns an ``ExperimentResult``. The containers a
    run starts are removed when it returns, or at teardown with ``keep`` when the
    test failed they stay.
    """

    def __init__(self, request: pytest.FixtureRequest, settings: Settings):
        self.request = request
        self.settings = settings
        self.results: list[ExperimentResult] = []
        self._session: NniDockerSession = request.config.stash[session_key]
        self._runners: list[ExperimentRunner] = []

    @property
    def image(self) -> str:
        return self._session.image_for(self.settings)

    def run(self, config: str | Path | dict[str, Any], base_dir: str | Path | None = None, **overrides: Any) -> ExperimentResult:
        """Run an NNI v2 experiment and return its result.

        A relative config path and the relative paths inside a dict config
        resolve against the test file's folder unless ``base_dir`` is given.
        """
        from pytest_nni_docker.config import prepare_experiment

        base = Path(base_dir) if base_dir is not None else self.request.path.parent
        if isinstance(config, (str, Path)) and not Path(config).is_absolute():
            config = base / config
        # Check the config before any image build or container start.
        checked = dict(config) if isinstance(config, dict) else config
        if overrides:
            from pytest_nni_docker.config import load_config

            _check_overrides(overrides)
            data, _, resolved_base = load_config(checked, base)
            data.update(overrides)
            prepare_experiment(data, resolved_base, platform=self.settings.mode)
        else:
            prepare_experiment(checked, base, platform=self.settings.mode)

        runner = ExperimentRunner(
            self._session.engine(),
            self.image,
            self.settings.nni_version,
            RunOptions(timeout=self.settings.timeout, no_progress_timeout=self.settings.no_progress_timeout,
                       keep=True),
            progress=self._progress,
            test_name=self.request.node.nodeid,
            device_requests=self.settings.device_requests(),
        )
        self._runners.append(runner)
        records = self.request.node.stash.setdefault(records_key, [])
        service = self._service()
        if reuse_applies(self.request.config, self.settings) and (service is None or service.shared):
            runner.reuse = self._session.shared_managers()
        try:
            result = runner.run(config, base_dir=base, service=service, **overrides)
        except ExperimentFailed as error:
            # A failed experiment gets its table row and files too: CI needs them most then.
            if error.result is not None:
                self._record(error.result)
            raise
        finally:
            records.extend(runner.records)
        self._record(result)
        return result

    def _record(self, result: ExperimentResult) -> None:
        """Add the result to the summary table and write its files."""
        self.results.append(result)
        self._session.results.append((self.request.node.nodeid, result))
        self.request.node.stash.setdefault(summary_rows_key, []).append(SummaryRow.of(self.request.node.nodeid, result))
        self._export(result)

    def _export(self, result: ExperimentResult) -> None:
        """Write the result as JSON and as an HTML report when the options ask for them."""
        from pytest_nni_docker.html_report import write_report

        config = self.request.config
        stem = _file_stem(self.request.node.nodeid, len(self.results))
        results_dir = output_dir(config, "nni_results_dir")
        html_dir = output_dir(config, "nni_html_report")
        try:
            if results_dir is not None:
                results_dir.mkdir(parents=True, exist_ok=True)
                result.to_json(results_dir / f"{stem}.json")
            if html_dir is not None:
                write_report(result, html_dir / f"{stem}.html", test=self.request.node.nodeid)
        except OSError as error:
            # A folder that cannot be written should not fail the test that ran the experiment.
            self.request.node.warn(pytest.PytestWarning(
                f"Writing the result of experiment {result.id} failed: {error}. Check --nni-results-dir and --nni-html-report."
            ))

    def _service(self) -> Any:
        """Return the remote training service for mode="remote", or None for local mode."""
        if self.settings.mode != "remote":
            return None
        pool = self.request.getfixturevalue("nni_remote_pool")
        return pool

    _last_progress: tuple = ()

    def _progress(self, progress: Progress) -> None:
        total = progress.trials_total if progress.trials_total is not None else "?"
        best = f"{progress.best_metric:.6g}" if progress.best_metric is not None else "-"
        key = (progress.status, progress.trials_done, best)
        if key == self._last_progress:
            return
        self._last_progress = key
        self._session.progress_line(
            f"{progress.experiment_id} {progress.status}: {progress.trials_done}/{total} trials done, "
            f"best {best}, {progress.elapsed:.0f} s"
        )

    def teardown(self) -> None:
        failed = self.request.node.stash.get(call_failed_key, True)
        for runner in self._runners:
            for record in runner.records:
                if self.settings.keep and failed and record.manager is not None:
                    self._session.kept_ids.add(record.manager.id)
                    if record.network is not None:
                        self._session.kept_ids.add(record.network.id)
                    name = record.manager.name
                    if isinstance(record.manager, NniContainer):
                        name = self._session.engine().mark_kept(record.manager.container)
                    self.request.node.stash.setdefault(kept_messages_key, []).append(
                        f"{self.request.node.nodeid}: kept {name}, web UI {record.web_ui}; "
                        f"remove with `docker rm -f {name}` or `python -m pytest_nni_docker cleanup --kept`"
                    )
                else:
                    runner.remove(record)


@pytest.fixture
def nni_docker_settings(request: pytest.FixtureRequest) -> Settings:
    """Return the settings of this test: options overridden by ``@pytest.mark.nni_docker(...)``.

    Override this fixture to compute settings in code.
    """
    try:
        return settings_for(request.node)
    except ConfigError as error:
        message = str(error)
    # Failing outside the except block keeps the ConfigError out of the report, so
    # the message shows once.
    pytest.fail(message, pytrace=False)


@pytest.fixture
def nni_experiment(request: pytest.FixtureRequest, nni_docker_settings: Settings) -> Iterator[NniExperiment]:
    """Run NNI experiments in Docker: ``nni_experiment.run("config.yml")`` returns an ``ExperimentResult``."""
    nni_session: NniDockerSession = request.config.stash[session_key]
    try:
        nni_session.engine()
    except DockerUnavailableError as error:
        if _option(request.config, "nni_require_docker"):
            pytest.fail(str(error), pytrace=False)
        pytest.skip(f"no Docker daemon: {error}")
    problem = nni_session.gpu_problem(nni_docker_settings, request.node.nodeid)
    if problem is not None:
        pytest.skip(f"no GPUs for gpus={nni_docker_settings.gpus!r}: {problem}")
    if nni_docker_settings.mode == "remote":
        # Set up first so that the workers outlive the manager at teardown.
        request.getfixturevalue("nni_remote_pool")
    experiment = NniExperiment(request, nni_docker_settings)
    try:
        yield experiment
    finally:
        experiment.teardown()


@pytest.fixture(scope="session")
def nni_ssh_credentials() -> Iterator[Any]:
    """The SSH key pair and password of this test session, in a folder only its owner reads.

    The folder is deleted when the session ends. ``credentials.with_auth("password")``
    gives the same credentials with password login.
    """
    from pytest_nni_docker.ssh import Credentials

    credentials = Credentials.generate()
    try:
        yield credentials
    finally:
        credentials.remove()


@pytest.fixture
def nni_remote_pool(request: pytest.FixtureRequest, nni_docker_settings: Settings, nni_ssh_credentials: Any) -> Iterator[Any]:
    """A started ``RemotePool`` of ``workers`` SSH containers for the test's NNI version.

    ``nni_experiment.run`` uses it in ``mode="remote"``; tests that drive NNI
    themselves read ``pool.workers`` and ``pool.machine_list()``. The workers and
    their network are removed at teardown.
    """
    from pytest_nni_docker import host_manager
    from pytest_nni_docker.pool import RemotePool

    nni_session: NniDockerSession = request.config.stash[session_key]
    try:
        engine = nni_session.engine()
    except DockerUnavailableError as error:
        if _option(request.config, "nni_require_docker"):
            pytest.fail(str(error), pytrace=False)
        pytest.skip(f"no Docker daemon: {error}")
    settings = nni_docker_settings
    if settings.host_manager:
        reason = host_manager.skip_reason(settings.nni_version)
        if reason is not None:
            pytest.skip(reason)

    worker_image = ImageBuilder(engine, progress=nni_session.progress_line).ensure_worker_image(nni_session.image_for(settings))
    credentials = nni_ssh_credentials.with_auth(settings.auth)

    def new_pool() -> RemotePool:
        return RemotePool(engine, worker_image, settings.nni_version, credentials,
                          size=settings.workers, test_name=request.node.nodeid, host_manager=settings.host_manager,
                          import_on_every_worker=settings.import_on_every_worker).start()

    if reuse_applies(request.config, settings):
        shared_pools = nni_session.shared_pools()
        key = (worker_image, settings.nni_version, settings.workers, settings.auth, settings.import_on_every_worker)
        pool = shared_pools.acquire(key, new_pool, request.node.nodeid)
        try:
            yield pool
        finally:
            shared_pools.release(key, pool)
        return

    pool = new_pool()
    try:
        yield pool
    finally:
        # This teardown runs before nni_experiment's, whose run() requested the
        # pool, so the manager of a kept run is still on the pool network here.
        failed = request.node.stash.get(call_failed_key, True)
        if settings.keep and failed and pool.workers:
            _keep_pool(nni_session, pool, request.node)
        else:
            pool.remove()


def reuse_applies(config: pytest.Config, settings: Settings) -> bool:
    """Return whether a test with ``settings`` shares containers under ``--nni-reuse-manager``."""
    return bool(_option(config, "nni_reuse_manager")) and not settings.keep and not settings.host_manager


def _keep_pool(nni_session: NniDockerSession, pool: Any, item: pytest.Item) -> None:
    """Leave the workers and network of a failed test's pool for debugging, renamed as kept."""
    names = []
    for worker in pool.workers:
        nni_session.kept_ids.add(worker.container.id)
        names.append(nni_session.engine().mark_kept(worker.container))
    if pool.network is not None:
        nni_session.kept_ids.add(pool.network.id)
    item.stash.setdefault(kept_messages_key, []).append(
        f"{item.nodeid}: kept workers {', '.join(names)} (SSH on 127.0.0.1 ports "
        f"{', '.join(str(w.host_port) for w in pool.workers)}); remove with `python -m pytest_nni_docker cleanup --kept`"
    )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    nni_session = config.stash.get(session_key, None)
    if nni_session is None:
        return
    from pytest_nni_docker.reporting import summary_lines

    lines = summary_lines(nni_session.summary_rows)
    if lines:
        terminalreporter.write_sep("=", "NNI experiments")
        for line in lines:
            terminalreporter.write_line(line)
    if nni_session.kept_messages:
        terminalreporter.write_sep("-", "kept NNI containers")
        for line in nni_session.kept_messages:
            terminalreporter.write_line(line)


__all__ = ["NniExperiment", "NniDockerSession", "Settings"]
