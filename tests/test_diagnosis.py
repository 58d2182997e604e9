"""Hints for known NNI failures, read from real log text."""

from pytest_nni_docker.diagnosis import dispatcher_failure, dispatcher_hint, manager_crash, manager_error_hint, manager_errors

# dispatcher.log of a real NNI 3.0 run: TPE at trialConcurrency 2, where a trial
# was handed another trial's parameters.
TPE_RACE_LOG = """\
[2026-12-04 21:04:25] INFO (nni.runtime.msg_dispatcher_base/MainThread) Dispatcher started
[2026-12-04 21:04:29] ERROR (nni.runtime.msg_dispatcher_base/Thread-1 (command_queue_worker)) 1
Traceback (most recent call last):
  File "/opt/nni/lib/python3.11/site-packages/nni/runtime/msg_dispatcher_base.py", line 108, in command_queue_worker
    self.process_command(command, data)
  File "/opt/nni/lib/python3.11/site-packages/nni/runtime/msg_dispatcher.py", line 201, in _handle_final_metric_data
    self.tuner.receive_trial_result(id_, _trial_params[id_], value, customized=customized,
  File "/opt/nni/lib/python3.11/site-packages/nni/algorithms/hpo/tpe_tuner.py", line 197, in receive_trial_result
    params = self._running_params.pop(parameter_id)
             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
KeyError: 1
[2026-12-04 21:04:29] INFO (nni.runtime.msg_dispatcher_base/MainThread) Dispatcher exiting...
"""


def test_tpe_race_is_explained_on_nni_3_0():
    assert dispatcher_failure(TPE_RACE_LOG) == "KeyError: 1"

    hint = dispatcher_hint(TPE_RACE_LOG, parameters_bug=True)

    assert hint is not None
    assert "known NNI 3.0 bug" in hint
    assert "trialConcurrency: 1" in hint


def test_tpe_race_hint_needs_parameters_bug():
    assert dispatcher_hint(TPE_RACE_LOG, parameters_bug=False) is None


def test_other_tuner_crash_gets_no_hint():
    log = TPE_RACE_LOG.replace("KeyError: 1", "RuntimeError: tuner failed")

    assert dispatcher_hint(log, parameters_bug=True) is None


# nnictl_stderr.log of a real NNI 2.10.1 manager whose workers rejected its SSH key.
SSH_REJECTED_STDERR = """\
--------------------------------------------------------------------------------
Experiment fsntmhyr start: 2026-12-04 21:32:55.062001
--------------------------------------------------------------------------------
/opt/nni/lib/python3.11/site-packages/nni_node/training_service/remote_machine/shellExecutor.js:83
            deferred.reject(new Error(err.message));
                            ^

Error: All configured authentication methods failed
    at Client.<anonymous> (/opt/nni/lib/python3.11/site-packages/nni_node/training_service/remote_machine/shellExecutor.js:83:29)
"""


def test_ssh_login_failure_of_manager_is_explained():
    crash = manager_crash(SSH_REJECTED_STDERR)

    assert crash is not None
    assert crash.startswith("Error: All configured authentication methods failed")
    assert "could not log in to a remote worker over SSH" in crash


def test_other_manager_crash_is_returned_as_is():
    stderr = SSH_REJECTED_STDERR.replace("All configured authentication methods failed", "listen EADDRINUSE")

    assert manager_crash(stderr) == "Error: listen EADDRINUSE"


def test_no_crash_in_clean_stderr():
    assert manager_crash("Experiment abc start: 2026-12-04\n") is None


# nnimanager.log of NNI 3.0 after a worker rejected the manager's SSH key.
REJECTED_LOGIN_LOG = """\
[2026-12-04 23:02:11] INFO (NNIManager) Change NNIManager status from: INITIALIZED to: RUNNING
[2026-12-04 23:02:12] ERROR (TrainingServiceCompat) Training srevice initialize failed: Error: All configured authentication methods failed
[2026-12-04 23:02:12] INFO (NNIManager) Change NNIManager status from: RUNNING to: STOPPING
[2026-12-04 23:02:13] ERROR (NNIDataStore) Error: SQLITE_MISUSE: Database is closed
[2026-12-04 23:02:13] ERROR (NNIDataStore) Error: SQLITE_MISUSE: Database is closed
"""


def test_manager_errors_keep_distinct_messages():
    errors = manager_errors(REJECTED_LOGIN_LOG)

    assert errors == [
        "(TrainingServiceCompat) Training srevice initialize failed: Error: All configured authentication methods failed",
        "(NNIDataStore) Error: SQLITE_MISUSE: Database is closed",
    ]
    assert "could not log in to a remote worker over SSH" in manager_error_hint(errors)
    assert manager_error_hint(errors[1:]) is None
    assert manager_errors("[2026-12-04 23:02:11] INFO (NNIManager) started") == []
