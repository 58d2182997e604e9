"""Evidence in the report of a failed test, on the terminal and in JUnit XML, as a user runs pytest."""

from __future__ import annotations

import shutil
from pathlib import Path

CASES = Path(__file__).parent / "cases"

TESTS = """
    import pytest

    BASE = {
        "trialCodeDirectory": "cases",
        "trialConcurrency": 2,
        "maxTrialNumber": 2,
        "tuner": {"name": "Random"},
    }

    @pytest.mark.nni_docker(timeout=300)
    def test_trials_fail(nni_experiment):
        result = nni_experiment.run({
            **BASE,
            "trialCommand": "python3 quick_trial.py",
            "searchSpace": {"x": {"_type": "choice", "_value": [0.2, 0.8]},
                            "fail": {"_type": "choice", "_value": [True]}},
        })
        assert not result.failed

    @pytest.mark.nni_docker(timeout=300)
    def test_command_not_found(nni_experiment):
        result = nni_experiment.run({
            **BASE,
            "maxTrialNumber": 1,
            "trialConcurrency": 1,
            "trialCommand": "no_such_program --epochs 1",
            "searchSpace": {"x": {"_type": "choice", "_value": [0.5]}},
        })
        assert not result.failed

    @pytest.mark.nni_docker(timeout=300)
    def test_tuner_crashes(nni_experiment):
        nni_experiment.run({
            **BASE,
            "trialCommand": "python3 quick_trial.py",
            "searchSpace": {"x": {"_type": "choice", "_value": [0.2, 0.8]}},
            "tuner": {"codeDirectory": "cases/tuners", "className": "crash_tuner.CrashTuner"},
        })
"""


def test_failed_experiments_carry_evidence(pytester):
    shutil.copytree(CASES, pytester.path / "cases")
    pytester.makepyfile(test_evidence_child=TESTS)
    junit = pytester.path / "junit.xml"

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", f"--junitxml={junit}")

    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    xml = junit.read_text()
    print(output)

    # Trials that fail: each one's parameters and stderr, the experiment's status
    # and statistics, and the manager's logs.
    result.stdout.fnmatch_lines([
        "*nni-docker: experiment *",
        "experiment * status DONE",
        "end state: done (finished: NNI reported DONE)",
        "trials by status: FAILED 2",
        "failed trials (the trial code's failure, not NNI's): 2 of 2",
        "no trial succeeded, although NNI reports DONE",
    ])
    result.stdout.fnmatch_lines([
        "*nni-docker: trial * (FAILED)*",
        "status: FAILED",
        'parameters: {"fail": true, "x": 0.*}',
        "*stderr (tail):",
        "quick_trial: failing on purpose with x=0.*",
    ])
    result.stdout.fnmatch_lines(["*nni-docker: nnimanager.log (tail)*", "*Start NNI manager*"])
    result.stdout.fnmatch_lines(["*nni-docker: dispatcher.log (tail)*", "*Dispatcher started*"])

    # A trial command that is not found gets a hint that names it.
    result.stdout.fnmatch_lines([
        "hint: The trial command 'no_such_program --epochs 1' failed because 'no_such_program' is not found*",
        "*stderr (tail):",
        "*no_such_program: command not found",
    ])

    # A crashed tuner is reported as NNI's own failure, distinct from trial failures.
    result.stdout.fnmatch_lines([
        "*ExperimentFailed: NNI's dispatcher failed with RuntimeError: CrashTuner fails on purpose*",
    ])
    result.stdout.fnmatch_lines([
        "*nni-docker: end state*",
        "dispatcher_failed (failed: the tuner or assessor raised an exception in NNI's dispatcher, "
        "a failure of NNI itself, not of a trial)",
    ])
    result.stdout.fnmatch_lines(["*nni-docker: dispatcher.log (tail)*", "*ERROR (nni.runtime.msg_dispatcher_base*"])

    # Each section appears once, also when pytest-xdist workers send the reports.
    assert output.count("nni-docker: nnimanager.log (tail)") == 3

    # JUnit XML carries the same evidence in each failure's text.
    assert xml.count("<failure") == 3
    assert "nni-docker: nnimanager.log (tail)" in xml
    assert "quick_trial: failing on purpose with x=0." in xml
    assert "no_such_program: command not found" in xml
    assert "RuntimeError: CrashTuner fails on purpose in generate_parameters" in xml
    assert "failed trials (the trial code&apos;s failure, not NNI&apos;s): 2 of 2" in xml or \
        "failed trials (the trial code's failure, not NNI's): 2 of 2" in xml
