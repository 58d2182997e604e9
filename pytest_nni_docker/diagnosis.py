"""Causes of failures read from NNI's logs and trial output, in words a user can act on.

The experiment runner calls this module to learn whether the dispatcher has
crashed, and the report layer calls it to describe end states and failed trials.
"""

from __future__ import annotations

import re

# The end states of an experiment, by reason. The first three are a normal
# finish, and every other one raises ``ExperimentFailed`` with that reason.
END_STATES: dict[str, str] = {
    "done": "finished: NNI reported DONE",
    "no_more_trial": "finished: NNI reported NO_MORE_TRIAL and no trial is waiting or running",
    "tuner_no_more_trial": "finished: the tuner ran out of parameters (TUNER_NO_MORE_TRIAL) and no trial is waiting or running",
    "error": "failed: NNI reported ERROR, a failure of NNI itself (tuner, assessor, dispatcher or training service), not of a trial",
    "dispatcher_failed": "failed: the tuner or assessor raised an exception in NNI's dispatcher, a failure of NNI itself, not of a trial",
    "stopped": "failed: NNI stopped the experiment by itself, for example because its training service failed to start",
    "manager_died": "failed: the NNI manager process died, so its REST API stopped responding",
    "rest_error": "failed: the NNI manager's REST API kept returning HTTP errors",
    "no_progress": "failed: the status, job statistics and metrics did not change for the no-progress period",
    "timeout": "failed: the experiment ran longer than its timeout",
    "submit_failed": "failed: nnictl create could not start the experiment",
}

# In NNI 2.10 and 3.0 (nni/runtime/msg_dispatcher_base.py) an exception in a
# tuner or assessor call is logged by this logger, and the thread that handles
# the manager's commands exits. The dispatcher process stays alive but handles
# no more commands, so the experiment hangs in RUNNING. The nni.main logger
# reports a tuner that cannot be created, before the manager notices.
_FATAL_DISPATCHER_LOGGERS = ("nni.runtime.msg_dispatcher_base/", "nni.main/")
_LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:]+\] (?P<level>[A-Z]+) \((?P<logger>[^)]*)\) ?(?P<message>.*)$")

# Messages of the shell and of Python for a trial command that cannot start.
_COMMAND_NOT_FOUND = re.compile(r"(?:^|: )(?P<command>[^\s:]+): (?:command )?not found$", re.MULTILINE)
_SCRIPT_NOT_FOUND = re.compile(r"can't open file '(?P<path>[^']+)': \[Errno 2\] No such file or directory")
_MODULE_NOT_FOUND = re.compile(r"ModuleNotFoundError: No module named '(?P<module>[^']+)'")


def describe_end_state(reason: str) -> str:
    """Return what the end state ``reason`` means, or the reason itself when it is unknown."""
    return END_STATES.get(reason, reason)


def dispatcher_failure(dispatcher_log: str) -> str | None:
    """Return the exception that stopped NNI's dispatcher, from the text of dispatcher.log, or None.

    The result is the last line of the first fatal traceback, such as
    ``RuntimeError: tuner failed``, or the error message itself when no traceback follows it.
    """
    lines = dispatcher_log.splitlines()
    for index, line in enumerate(lines):
        match = _LOG_LINE.match(line)
        if not match or match["level"] not in ("ERROR", "CRITICAL"):
            continue
        if not match["logger"].startswith(_FATAL_DISPATCHER_LOGGERS):
            continue

        # The traceback runs until the next log line; its last line names the exception.
        exception_line = ""
        for following in lines[index + 1:]:
            if _LOG_LINE.match(following):
                break
            if following.strip() and not following.startswith((" ", "\t", "Traceback")):
                exception_line = following.strip()
        return exception_line or match["message"].strip() or line.strip()
    return None


def dispatcher_hint(dispatcher_log: str, parameters_bug: bool) -> str | None:
    """Return the explanation of a known NNI bug behind a dispatcher failure, or None."""
    known_race = "receive_trial_result" in dispatcher_log and re.search(r"^KeyError: \d+\s*$", dispatcher_log, re.MULTILINE)
    if parameters_bug and known_race:
        return (
            "This is a known NNI 3.0 bug: with trialConcurrency above 1 the manager can hand a trial another trial's "
            "parameters, and when that trial ends, a tuner that tracks running parameters (such as TPE) drops the "
            "other trial's entry and then fails on its metric. Use trialConcurrency: 1 with such a tuner, a tuner "
            "without that state such as Random, or NNI 2.10."
        )
    return None


_SSH_LOGIN_FAILED = "All configured authentication methods failed"


_SSH_LOGIN_HINT = (
    "NNI's manager could not log in to a remote worker over SSH. Check the machineList credentials (user, "
    "sshKeyFile or password) and that the worker's sshd accepts them. NNI 2.10's SSH client signs RSA keys "
    "with SHA-1, which OpenSSH 8.8 and later reject unless ssh-rsa is enabled."
)


def manager_crash(nnictl_stderr: str) -> str | None:
    """Return the error that ended NNI's Node.js manager, from nnictl_stderr.log, with a hint; or None."""
    error_line = next((line.strip() for line in nnictl_stderr.splitlines() if re.match(r"^\w*Error: ", line.strip())), None)
    if error_line is None:
        return None
    if _SSH_LOGIN_FAILED in error_line:
        return f"{error_line}. {_SSH_LOGIN_HINT}"
    return error_line


def manager_error_hint(errors: list[str]) -> str | None:
    """Return advice for the errors of ``manager_errors``, or None when none of them is known."""
    if any(_SSH_LOGIN_FAILED in error for error in errors):
        return _SSH_LOGIN_HINT
    return None


def manager_errors(nnimanager_log: str, limit: int = 5) -> list[str]:
    """Return the last ``limit`` distinct ERROR and CRITICAL messages of nnimanager.log, oldest first."""
    messages: list[str] = []
    for line in nnimanager_log.splitlines():
        match = _LOG_LINE.match(line)
        if match and match["level"] in ("ERROR", "CRITICAL"):
            message = f"({match['logger']}) {match['message'].strip()}"
            if message in messages:
                messages.remove(message)
            messages.append(message)
    return messages[-limit:]


def format_statistics(statistics: dict[str, int]) -> str:
    """Return job statistics as text such as ``RUNNING 2, SUCCEEDED 1``, or ``none``."""
    if not statistics:
        return "none"
    return ", ".join(f"{status} {number}" for status, number in sorted(statistics.items()))


def trial_hint(stderr: str, trial_command: str) -> str | None:
    """Return advice for a trial whose stderr shows that its command could not start, or None."""
    match = _COMMAND_NOT_FOUND.search(stderr)
    if match:
        return (
            f"The trial command {trial_command!r} failed because {match['command']!r} is not found in the "
            "manager container. Fix trialCommand, or install the program in the image (--nni-pip for Python packages)."
        )
    match = _SCRIPT_NOT_FOUND.search(stderr)
    if match:
        return (
            f"The trial command {trial_command!r} names the script {match['path']!r}, which is not in the trial code. "
            "Check trialCodeDirectory and the script's path relative to it."
        )
    match = _MODULE_NOT_FOUND.search(stderr)
    if match:
        return (
            f"The trial imports the module {match['module']!r}, which the NNI image does not contain. "
            f"Add its package with --nni-pip or @pytest.mark.nni_docker(pip_packages=[...])."
        )
    return None
