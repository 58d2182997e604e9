"""SSH credentials for remote mode and the login check that makes a worker ready.

A key pair and a password are made once per test session. The private key lives
in a temporary folder that only its owner can read and is deleted when the
session ends. Neither the private key nor the password appears in a ``repr``,
a log line or an exception message.
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import shutil
import socket
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pytest_nni_docker.engine import _process_alive, _process_start_time

logger = logging.getLogger(__name__)

KEY_FOLDER_PREFIX = "pytest-nni-docker-ssh-"

# paramiko logs a traceback at ERROR for every login tried before sshd is up,
# which readiness polling does on purpose. Keep a level the user set.
if logging.getLogger("paramiko").level == logging.NOTSET:
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)

Auth = Literal["key", "password"]
SSH_USER = "root"
REDACTED = "<redacted>"


@dataclass
class Credentials:
    """The client side of SSH logins to the workers.

    ``key_file`` is the private key in PEM (OpenSSL traditional) format, which
    paramiko and the ssh2 library of NNI 2.10 and 3.0 all read. ``auth``
    decides which of the key and the password a worker accepts and a
    ``machineList`` names.
    """

    auth: Auth
    folder: Path
    key_file: Path
    public_key: str
    password: str = field(default="", repr=False)
    user: str = SSH_USER

    @classmethod
    def generate(cls, auth: Auth = "key", parent: str | None = None) -> Credentials:
        """Make a fresh RSA key pair and a random password in a new private folder."""
        # The owner's pid and start time in the name let a later run remove the
        # folder when this process is killed before it can.
        pid = os.getpid()
        folder = Path(tempfile.mkdtemp(prefix=f"{KEY_FOLDER_PREFIX}{pid}-{_process_start_time(pid) or 0}-", dir=parent))
        folder.chmod(stat.S_IRWXU)

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)

        key_file = folder / "id_rsa"
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(private_pem)

        password = secrets.token_urlsafe(24)
        logger.info("Created an SSH key pair for remote workers in %s (auth: %s)", folder, auth)
        return cls(auth=auth, folder=folder, key_file=key_file,
                   public_key=public.decode("ascii") + " pytest-nni-docker", password=password)

    def with_auth(self, auth: Auth) -> Credentials:
        """Return credentials that share this key pair and log in with ``auth``."""
        if auth == self.auth:
            return self
        return Credentials(auth=auth, folder=self.folder, key_file=self.key_file, public_key=self.public_key,
                           password=self.password, user=self.user)

    def private_key_text(self) -> str:
        return self.key_file.read_text(encoding="ascii")

    def redact(self, text: str) -> str:
        """Return ``text`` with the password replaced by a marker."""
        if self.password:
            text = text.replace(self.password, REDACTED)
        return text

    def remove(self) -> None:
        """Delete the key files. Safe to call twice."""
        shutil.rmtree(self.folder, ignore_errors=True)


def remove_stale_key_folders(parent: str | None = None) -> int:
    """Delete key folders of this user whose owner process is gone; return how many.

    A run killed with SIGKILL cannot delete its key pair, so the next run does.
    """
    removed = 0
    for folder in Path(parent or tempfile.gettempdir()).glob(f"{KEY_FOLDER_PREFIX}*"):
        parts = folder.name[len(KEY_FOLDER_PREFIX):].split("-")
        try:
            pid, start_time = int(parts[0]), parts[1]
            if folder.stat().st_uid != os.getuid():
                continue
        except (IndexError, ValueError, OSError):
            continue
        if not _process_alive(pid, "" if start_time == "0" else start_time):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
            logger.info("Removed the SSH key folder %s of a run that is gone", folder)
    return removed


def run_command(host: str, port: int, credentials: Credentials, command: str, timeout: float = 10.0) -> tuple[int, str]:
    """Log in over SSH with ``credentials`` and run ``command``; return its exit code and output.

    Raises ``OSError`` or ``paramiko.SSHException`` when the login fails. The
    messages of both name the host and port, never the password.
    """
    client = paramiko.SSHClient()
    # Every worker of an image has the host keys made when the image was built, and
    # the image changes with each build, so there is no key worth pinning.
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        if credentials.auth == "password":
            client.connect(host, port=port, username=credentials.user, password=credentials.password,
                           look_for_keys=False, allow_agent=False, timeout=timeout, banner_timeout=timeout,
                           auth_timeout=timeout)
        else:
            client.connect(host, port=port, username=credentials.user, key_filename=str(credentials.key_file),
                           look_for_keys=False, allow_agent=False, timeout=timeout, banner_timeout=timeout,
                           auth_timeout=timeout)
        _, stdout, stderr = client.exec_command(command, timeout=timeout)
        output = stdout.read().decode("utf-8", errors="replace") + stderr.read().decode("utf-8", errors="replace")
        return stdout.channel.recv_exit_status(), output
    finally:
        client.close()


# Reads NNI's version from its package metadata and finds the package without
# running it: a full ``import nni`` costs about a second of CPU for NNI 3.0
# (scipy.stats), which adds up when eight workers check at once on two cores.
_VERSION_SCRIPT = """\
import importlib.util, sys
try:
    from importlib.metadata import version
except ImportError:  # Python 3.7
    from pkg_resources import get_distribution
    def version(name):
        return get_distribution(name).version
if importlib.util.find_spec("nni") is None:
    sys.exit("No module named 'nni'")
print(version("nni"))
"""
_IMPORT_SCRIPT = "import nni; print(nni.__version__)"


def check_login(host: str, port: int, credentials: Credentials, python_path: str, nni_version: str,
                import_nni: bool = True) -> bool:
    """Return True when an SSH login finds NNI ``nni_version`` with the worker's Python.

    With ``import_nni`` the login runs ``python -c "import nni"``; without it, the
    login only finds the package and reads its version, which is much cheaper.
    Raises ``RuntimeError`` naming what was found when NNI is missing or another
    version, and ``ConnectionError`` when the login fails, so that a poll can retry.
    """
    script = _IMPORT_SCRIPT if import_nni else _VERSION_SCRIPT
    check_name = '`python -c "import nni"`' if import_nni else "The NNI version check"
    command = f"PATH={python_path}:$PATH python -c {shlex.quote(script)}"
    try:
        code, output = run_command(host, port, credentials, command)
    except (OSError, paramiko.SSHException, EOFError) as error:
        raise ConnectionError(f"SSH login to {host}:{port} as {credentials.user} failed: {type(error).__name__}: {error}") from None
    found = output.strip().splitlines()[-1] if output.strip() else ""
    if code != 0:
        raise RuntimeError(f"{check_name} over SSH on {host}:{port} failed (exit {code}): {output.strip()[-500:]}")
    if not versions_match(found, nni_version):
        raise NniVersionMismatch(f"The worker on {host}:{port} has NNI {found}, expected {nni_version}.")
    return True


class NniVersionMismatch(RuntimeError):
    """The worker's NNI is another version than the expected one."""


def versions_match(found: str, expected: str) -> bool:
    """Compare NNI versions: "3.0" matches "3.0" and "3.0.0"; "2.10" matches "2.10.1"."""
    found_parts = found.strip().split(".")
    expected_parts = expected.strip().split(".")
    length = min(len(found_parts), len(expected_parts))
    return found_parts[:length] == expected_parts[:length] and bool(found.strip())


def free_port_pair(host: str = "0.0.0.0") -> int:
    """Return a port P such that P and P + 1 are both free on ``host`` (all interfaces) right now.

    NNI 2.10 in remote reuse mode listens on the REST port + 1 as well.
    """
    for _ in range(100):
        with socket.socket() as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind((host, port + 1))
                except OSError:
                    continue
                return port
    raise OSError(f"No two adjacent free TCP ports found on {host}.")
