"""NNI x Python cells: which cells are supported, their pins, the version facts,
and the early rejection of a cell that cannot work. No image is built here."""

import re

import pytest

import pytest_nni_docker
from pytest_nni_docker import versions
from pytest_nni_docker.errors import ConfigError
from pytest_nni_docker.settings import Settings

UNSUPPORTED_CELL_TEST = """
    import pytest

    @pytest.mark.nni_docker(nni_version="3.0", python="3.13")
    def test_cell(nni_experiment):
        nni_experiment.run({"trialCommand": "true", "trialConcurrency": 1, "searchSpace": {}})
"""

CELLS_TEST = """
    import pytest
    import pytest_nni_docker

    @pytest.mark.parametrize("cell", pytest_nni_docker.cells())
    def test_cell(cell, nni_docker_settings):
        assert nni_docker_settings.nni_version == cell.nni_version
        assert nni_docker_settings.python == cell.python
        assert nni_docker_settings.cell() == cell.name
"""


def test_supported_cells_cover_both_releases():
    names = [cell.name for cell in versions.SUPPORTED_CELLS]

    assert names == ["nni3.0-py3.11", "nni3.0-py3.9", "nni2.10.1-py3.11", "nni2.10.1-py3.9"]


@pytest.mark.parametrize("cell", versions.SUPPORTED_CELLS, ids=lambda cell: cell.name)
def test_every_cell_is_pinned(cell):
    pins = versions.constraints_for(cell.nni_version, cell.python)
    lines = pins.splitlines()

    assert pins != versions._LOOSE_CONSTRAINTS
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+", line) for line in lines), lines
    assert "numpy==1.26.4" in lines
    assert not any(line.lower().startswith("nni==") for line in lines)
    assert versions.release(cell.nni_version).python_problem(cell.python) is None


@pytest.mark.parametrize("cell", versions.SUPPORTED_CELLS, ids=lambda cell: cell.name)
def test_cell_base_image_gives_its_python(cell):
    assert versions.python_of_base(cell.base_image) == cell.python


@pytest.mark.parametrize(
    ("nni_version", "python", "reason"),
    [
        ("3.0", "3.13", "imports pkg_resources"),
        ("2.10.1", "3.12", "imports pkg_resources"),
        ("3.0", "3.7", "typing.TypedDict"),
        ("2.10.1", "3.6", "requires Python >= 3.7"),
        ("3.0", "three", "is not a Python version"),
    ],
)
def test_unsupported_cell_names_cell_and_reason(nni_version, python, reason):
    with pytest.raises(ConfigError) as caught:
        versions.check_supported(nni_version, python_version=python)

    message = str(caught.value)
    assert message.startswith(f"NNI {nni_version} on Python {python} is not supported: ")
    assert reason in message
    assert "tested cells: " in message


def test_unsupported_base_image_is_named():
    with pytest.raises(ConfigError, match=r"NNI 3\.0 on Python 3\.13 \(pytest-nni-docker/debian:trixie\) is not supported"):
        versions.check_supported("3.0", base_image="pytest-nni-docker/debian:trixie")


def test_unknown_base_python_passes():
    versions.check_supported("3.0", base_image="registry.example/team/python-with-nni:1")


def test_settings_reject_unsupported_python_with_reason():
    settings = Settings(nni_version="2.10.1", python="3.13")

    with pytest.raises(ConfigError, match=r"NNI 2\.10\.1 on Python 3\.13 is not supported: nnictl"):
        settings.check("test")


def test_ready_image_skips_python_check():
    Settings(nni_version="3.0", python="3.9", image="msranni/nni:v3.0").check("test")


@pytest.mark.parametrize(
    ("nni_version", "stdout_path", "trial_log_path"),
    [
        ("3.0", "/root/nni-experiments/E/environments/local-env/trials/T/trial.stdout",
         "/root/nni-experiments/E/environments/local-env/trials/T/trial.log"),
        ("2.10.1", "/root/nni-experiments/E/trials/T/stdout", "/root/nni-experiments/E/trials/T/trial.log"),
        ("2.10", "/root/nni-experiments/E/trials/T/stdout", "/root/nni-experiments/E/trials/T/trial.log"),
    ],
)
def test_local_trial_files_per_release(nni_version, stdout_path, trial_log_path):
    release = versions.release(nni_version)

    assert release.local_trial_file("E", "T", "stdout") == stdout_path
    assert release.local_trial_file("E", "T", "trial.log") == trial_log_path


def test_remote_differences_per_release():
    new, old = versions.release("3.0"), versions.release("2.10.1")

    assert new.serves_trial_files("remote")
    assert not old.serves_trial_files("remote")
    assert old.serves_trial_files("local")
    assert new.callback_port(8080) == 8080
    assert old.callback_port(8080) == 8081
    assert old.remote_reuse_default and not new.remote_reuse_default
    assert new.parameters_bug and not old.parameters_bug


def test_unknown_nni_version_lists_supported():
    with pytest.raises(ConfigError, match=r"NNI version '2\.9' is not supported\. Use one of: 2\.10\.1, 3\.0\."):
        versions.release("2.9")


def test_cells_helper_ids_and_marks():
    params = pytest_nni_docker.cells(timeout=120)

    assert [param.id for param in params] == [cell.name for cell in versions.SUPPORTED_CELLS]
    for param in params:
        (cell,) = param.values
        marker = next(mark.mark for mark in param.marks if mark.name == "nni_docker")
        assert marker.kwargs == {"nni_version": cell.nni_version, "python": cell.python, "timeout": 120}


def test_cells_helper_filters():
    by_version = pytest_nni_docker.cells(nni_versions=["2.10"])
    by_name = pytest_nni_docker.cells("nni3.0-py3.9")
    by_python = pytest_nni_docker.cells(pythons=["3.9"])

    assert [param.id for param in by_version] == ["nni2.10.1-py3.11", "nni2.10.1-py3.9"]
    assert [param.id for param in by_name] == ["nni3.0-py3.9"]
    assert [param.id for param in by_python] == ["nni3.0-py3.9", "nni2.10.1-py3.9"]


def test_cells_helper_rejects_unknown_cell():
    with pytest.raises(ConfigError, match=r"Unknown NNI cell 'nni3.0-py3.13'\. Known cells: nni3\.0-py3\.11"):
        pytest_nni_docker.cells("nni3.0-py3.13")


def test_cells_appear_in_test_ids(pytester):
    pytester.makepyfile(CELLS_TEST)

    result = pytester.runpytest("-v")

    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "*test_cell?nni3.0-py3.11? PASSED*",
        "*test_cell?nni3.0-py3.9? PASSED*",
        "*test_cell?nni2.10.1-py3.11? PASSED*",
        "*test_cell?nni2.10.1-py3.9? PASSED*",
    ])


def test_nni_cells_option_deselects_other_cells(pytester):
    pytester.makepyfile(CELLS_TEST)

    result = pytester.runpytest("-v", "--nni-cells", "nni2.10.1-py3.9,nni3.0-py3.11")

    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines(["*test_cell?nni3.0-py3.11? PASSED*", "*test_cell?nni2.10.1-py3.9? PASSED*"])


def test_nni_cells_ini_key(pytester):
    pytester.makeini("[pytest]\nnni_cells = nni3.0-py3.9\n")
    pytester.makepyfile(CELLS_TEST)

    result = pytester.runpytest("-v")

    result.assert_outcomes(passed=1, deselected=3)


def test_nni_cells_option_rejects_unknown_cell(pytester):
    pytester.makepyfile(CELLS_TEST)

    result = pytester.runpytest("--nni-cells", "nni3.0-py2.7")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--nni-cells: Unknown NNI cell 'nni3.0-py2.7'. Known cells: *"])


def test_unsupported_cell_marker_fails_before_build(pytester):
    pytester.makepyfile(UNSUPPORTED_CELL_TEST)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*NNI 3.0 on Python 3.13 is not supported: nnictl of NNI 3.0 imports pkg_resources*"])
    result.stdout.no_fnmatch_line("*Building image*")


def test_unsupported_cell_option_is_usage_error(pytester):
    pytester.makepyfile(UNSUPPORTED_CELL_TEST.replace('nni_version="3.0", python="3.13"', ""))

    result = pytester.runpytest("--nni-version", "2.10.1", "--nni-python", "3.13")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*NNI 2.10.1 on Python 3.13 is not supported: *"])
