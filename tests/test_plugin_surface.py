"""The pytest surface as users meet it: marker, options, skip without Docker, early errors."""

import os
import signal

import pytest

MARKED_TEST = """
    import pytest

    @pytest.mark.nni_docker
    def test_marked(nni_experiment):
        nni_experiment.run({"trialCommand": "true", "trialConcurrency": 1, "searchSpace": {}})
"""


@pytest.fixture
def no_docker(monkeypatch, tmp_path):
    """Point the Docker client at a socket path that does not exist."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'missing-docker.sock'}")


def test_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")

    result.stdout.fnmatch_lines(["@pytest.mark.nni_docker(**settings): run NNI experiments in Docker*"])


def test_options_are_listed_in_help(pytester):
    result = pytester.runpytest("--help")

    for option in ("--nni-version", "--nni-image", "--nni-base-image", "--nni-timeout", "--nni-keep",
                   "--nni-require-docker"):
        result.stdout.fnmatch_lines([f"*{option}*"])


def test_skipped_without_docker(pytester, no_docker):
    pytester.makepyfile(MARKED_TEST)

    result = pytester.runpytest("-rs")

    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no Docker daemon*Cannot reach the Docker daemon*docker-up.sh*"])


def test_require_docker_turns_skip_into_error(pytester, no_docker):
    pytester.makepyfile(MARKED_TEST)

    result = pytester.runpytest("--nni-require-docker")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Cannot reach the Docker daemon*"])


def test_require_docker_from_ini(pytester, no_docker):
    pytester.makeini("[pytest]\nnni_require_docker = true\n")
    pytester.makepyfile(MARKED_TEST)

    result = pytester.runpytest()

    result.assert_outcomes(errors=1)


def test_unmarked_tests_do_not_need_docker(pytester, no_docker):
    pytester.makepyfile("def test_plain():\n    assert True\n")

    result = pytester.runpytest()

    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--nni-timeout=-5", "timeout must be a positive number of seconds, not -5.0"),
        ("--nni-timeout=soon", "--nni-timeout must be a number of seconds, not 'soon'"),
        ("--nni-version=1.0", "NNI version '1.0' is not supported. Use one of: 2.10.1, 3.0."),
        ("--nni-python=3.13", "NNI 3.0 on Python 3.13*is not supported*"),
    ],
)
def test_impossible_option_is_usage_error(pytester, option, message):
    pytester.makepyfile("def test_plain():\n    pass\n")

    result = pytester.runpytest(option)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("nni_docker(timout=30)", "*unknown arguments: timout. Known: nni_version*"),
        ("nni_docker(timeout=0)", "*timeout must be a positive number of seconds, not 0*"),
        ("nni_docker(mode='cluster')", "*mode must be \"local\" or \"remote\", not 'cluster'*"),
        ("nni_docker(nni_version='2.0')", "*NNI version '2.0' is not supported*"),
        ("nni_docker('3.0')", "*takes keyword arguments only*"),
        ("nni_docker(gpus='banana')", "*gpus must be \"all\", a count, or device ids*not 'banana'*"),
        ("nni_docker(mode='remote', import_on_every_worker='yes')", "*import_on_every_worker must be True or False, not 'yes'*"),
        ("nni_docker(keep=1)", "*keep must be True or False, not 1*"),
    ],
)
def test_bad_marker_argument_fails_before_containers(pytester, marker, message):
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.{marker}
        def test_marked(nni_experiment):
            raise AssertionError("the test body must not run")
    """)

    result = pytester.runpytest()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*the test body must not run*")


def test_marker_overrides_options(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.nni_docker(nni_version="2.10.1", python="3.9", timeout=42)
        def test_marked(nni_docker_settings):
            assert nni_docker_settings.nni_version == "2.10.1"
            assert nni_docker_settings.resolved_base_image() == "pytest-nni-docker/debian:bullseye"
            assert nni_docker_settings.timeout == 42
            assert nni_docker_settings.no_progress_timeout == 77

        def test_unmarked(nni_docker_settings):
            assert nni_docker_settings.nni_version == "3.0"
            assert nni_docker_settings.timeout == 900
    """)

    result = pytester.runpytest("--nni-no-progress-timeout=77")

    result.assert_outcomes(passed=2)


def test_invalid_config_fails_before_any_container(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.nni_docker
        def test_marked(nni_experiment):
            nni_experiment.run("missing/config.yml")
    """)

    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ConfigError: Config file */missing/config.yml does not exist*"])


def test_unknown_run_override_names_the_closest_key(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.nni_docker
        def test_marked(nni_experiment):
            config = {"trialCommand": "true", "trialConcurrency": 1, "searchSpace": {}, "tuner": {"name": "Random"}}
            nni_experiment.run(config, maxTrialNumbr=2)
    """)

    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*run() got the keyword argument maxTrialNumbr=2*Did you mean maxTrialNumber?*"])


@pytest.mark.parametrize("key", ["nni_reuse_manager", "nni_keep", "nni_require_docker"])
def test_bad_bool_ini_names_key(pytester, key):
    pytester.makeini(f"[pytest]\n{key} = maybe\n")
    pytester.makepyfile("def test_plain():\n    pass\n")

    result = pytester.runpytest()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*The ini key {key} is invalid: invalid truth value 'maybe'. Use true or false.*"])


def test_interrupt_during_cleanup_is_deferred():
    """SIGINT and SIGTERM sent while the session's containers are removed do not stop the removal."""
    from pytest_nni_docker.plugin import _interrupts_deferred

    finished = False
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with _interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        finished = True

    assert finished
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
