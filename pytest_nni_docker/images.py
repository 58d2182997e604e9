"""NNI images: the spec of an image, its content-hash tag, building it with
progress, the SSH worker layer, and bootstrapping a Debian base image on hosts
with no container registry."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors

from pytest_nni_docker import versions
from pytest_nni_docker.engine import LABEL_PREFIX, Engine
from pytest_nni_docker.errors import ImageError

logger = logging.getLogger(__name__)

IMAGE_REPOSITORY = "pytest-nni-docker/nni"
WORKER_REPOSITORY = "pytest-nni-docker/nni-worker"
BASE_REPOSITORY = "pytest-nni-docker/debian"
LABEL_IMAGE = f"{LABEL_PREFIX}.image"
CACHE_DIR = Path(os.environ.get("PYTEST_NNI_DOCKER_CACHE", Path.home() / ".cache" / "pytest-nni-docker"))

# The folder in NNI images for the plugin's files, read by the worker layer and the manager.
IMAGE_ETC = "/etc/pytest-nni-docker"
PYTHON_PATH_FILE = f"{IMAGE_ETC}/python-path"

ProgressCallback = Callable[[str], None]

_NNI_DOCKERFILE = """\
# Built by pytest-nni-docker: NNI {nni_version} on {base_image}.
FROM {base_image}
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \\
      if command -v apt-get >/dev/null; then \\
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \\
        && rm -rf /var/lib/apt/lists/*; \\
      else echo 'The base image {base_image} has no python3 with venv and no apt-get to install it.' >&2; exit 1; fi; \\
    fi
COPY build/ {image_etc}/
RUN python3 -m venv /opt/nni \\
 && if [ -s {image_etc}/ca-bundle.crt ]; then export PIP_CERT={image_etc}/ca-bundle.crt; fi \\
 && if [ -n "$(ls {image_etc}/wheels 2>/dev/null)" ]; then export PIP_FIND_LINKS={image_etc}/wheels; fi \\
 && /opt/nni/bin/python -m pip install --constraint {image_etc}/constraints.txt {requirements} \\
 && /opt/nni/bin/python -c "import nni, sys; print('NNI', nni.__version__, 'on Python', sys.version.split()[0])" \\
 && echo /opt/nni/bin > {python_path_file} \\
 && rm -rf {image_etc}/wheels
ENV PATH=/opt/nni/bin:$PATH
WORKDIR /root
CMD ["sleep", "infinity"]
"""

# NNI 2.10's SSH client (the ssh2 package of its Node.js manager) signs RSA keys
# with SHA-1 only, which OpenSSH 8.8 and later reject unless ssh-rsa is enabled
# again: seen as "All configured authentication methods failed" against Debian
# bookworm's OpenSSH 9.2. The old option name is an alias in newer OpenSSH.
# The SSH layer goes on any NNI image, built or given. pip.conf makes NNI 3.0's
# `pip install nni --upgrade` on connect finish at once: no index is read, and the
# constraint pins the installed NNI version.
_WORKER_DOCKERFILE = """\
# Built by pytest-nni-docker: an SSH worker on {nni_image}.
FROM {nni_image}
USER root
ENV DEBIAN_FRONTEND=noninteractive
RUN if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then \\
      apt-get update && apt-get install -y --no-install-recommends openssh-server openssh-sftp-server \\
      && rm -rf /var/lib/apt/lists/*; \\
    fi \\
 && mkdir -p /run/sshd {image_etc} \\
 && sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config \\
 && printf 'PermitRootLogin yes\\nPasswordAuthentication yes\\nUseDNS no\\nMaxStartups 100:30:200\\nMaxSessions 100\\nPubkeyAcceptedKeyTypes +ssh-rsa\\nHostKeyAlgorithms +ssh-rsa\\n' >> /etc/ssh/sshd_config \\
 && rm -f /etc/ssh/ssh_host_*key* && ssh-keygen -q -A \\
 && PYTHON_DIR=$(if [ -s {python_path_file} ]; then cat {python_path_file}; else dirname "$(python3 -c 'import sys; print(sys.executable)')"; fi) \\
 && echo "$PYTHON_DIR" > {python_path_file} \\
 && NNI_VERSION=$("$PYTHON_DIR/python3" -c 'import nni; print(nni.__version__)') \\
 && echo "nni==$NNI_VERSION" > {image_etc}/worker-constraints.txt \\
 && printf '[global]\\nno-index = true\\nconstraint = {image_etc}/worker-constraints.txt\\ndisable-pip-version-check = true\\n' > /etc/pip.conf \\
 && echo "export PATH=$PYTHON_DIR:\\$PATH" > /etc/profile.d/nni.sh
COPY worker-entrypoint.sh /usr/local/bin/pytest-nni-docker-worker
RUN chmod 755 /usr/local/bin/pytest-nni-docker-worker
EXPOSE 22
CMD ["/usr/local/bin/pytest-nni-docker-worker"]
"""

# Host keys are made once, when the image is built, because making them at every
# start cost each worker about 0.2 s of CPU; `ssh-keygen -A` here only fills in a
# missing key. Workers of one image share host keys, which is fine for throwaway
# test machines that nothing else connects to. The client's
# credentials are copied into the created container before it starts (see
# pool.py), never passed through the environment, where `docker inspect` shows
# them: root's authorized_keys for key auth, or a chpasswd line that is read and
# deleted here for password auth.
_WORKER_ENTRYPOINT = """\
#!/bin/sh
set -e
ssh-keygen -A >/dev/null
mkdir -p /root/.ssh && chmod 700 /root/.ssh
if [ -f /root/.ssh/authorized_keys ]; then
  chown root:root /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
fi
if [ -f {password_file} ]; then
  chpasswd < {password_file}
  rm -f {password_file}
fi
exec /usr/sbin/sshd -D -e
""".format(password_file=f"{IMAGE_ETC}/worker-password")


def default_ca_bundle() -> Path | None:
    """Return the CA bundle that pip inside builds trusts: the first that exists of
    $PIP_CERT, $REQUESTS_CA_BUNDLE, $SSL_CERT_FILE and the Debian system bundle."""
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("REQUESTS_CA_BUNDLE"),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@dataclass(frozen=True)
class ImageSpec:
    """Everything that goes into an NNI image. The tag is a hash of it."""

    nni_version: str
    base_image: str
    pip_packages: tuple[str, ...] = ()
    wheels_dir: str | None = None

    def dockerfile(self) -> str:
        requirements = " ".join([f"nni=={self.nni_version}", *(_shell_quote(p) for p in self.pip_packages)])
        return _NNI_DOCKERFILE.format(
            nni_version=self.nni_version,
            base_image=self.base_image,
            image_etc=IMAGE_ETC,
            requirements=requirements,
            python_path_file=PYTHON_PATH_FILE,
        )

    def constraints(self) -> str:
        return versions.constraints_for(self.nni_version, versions.python_of_base(self.base_image))


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _hash_parts(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:16]


def _wheels_fingerprint(wheels_dir: str | None) -> str:
    if not wheels_dir:
        return ""
    entries = sorted(f"{p.name}:{p.stat().st_size}" for p in Path(wheels_dir).glob("*.whl"))
    return "\n".join(entries)


@dataclass
class ImageBuilder:
    """Builds and caches NNI images and SSH worker images.

    A tag is ``REPOSITORY:NNI_VERSION-HASH`` where the hash covers the Dockerfile,
    the image id of the base, the pinned constraints and any wheels. An image with
    that tag is reused as it is; a change to any input gives a new tag and a build.
    Builds of the same tag from parallel processes are serialized by a file lock,
    so pytest-xdist workers that need one image build it once.
    """

    engine: Engine
    ca_bundle: Path | None = field(default_factory=default_ca_bundle)
    progress: ProgressCallback | None = None
    build_timeout: float = 1800.0

    def _report(self, message: str) -> None:
        logger.info("%s", message)
        if self.progress is not None:
            self.progress(message)

    # Base images ---------------------------------------------------------

    def image_id(self, name: str) -> str | None:
        try:
            return self.engine.client.images.get(name).id
        except docker.errors.ImageNotFound:
            return None

    def ensure_base(self, base_image: str, allow_pull: bool = True) -> str:
        """Return the id of ``base_image``, pulling it when it is missing and may be pulled."""
        image_id = self.image_id(base_image)
        if image_id:
            return image_id

        suite = base_image.split(":", 1)[1] if ":" in base_image else "bookworm"
        bootstrap_hint = (
            f"Create it from Debian's packages with `python -m pytest_nni_docker bootstrap-base {suite}` "
            f"(as root, needs debootstrap), or choose another base with --nni-base-image."
        )
        if base_image.startswith(BASE_REPOSITORY) or not allow_pull:
            raise ImageError(f"Base image {base_image} is not present. {bootstrap_hint}")

        self._report(f"Pulling base image {base_image}")
        try:
            return self.engine.client.images.pull(base_image).id
        except docker.errors.APIError as error:
            raise ImageError(f"Base image {base_image} is not present and cannot be pulled: {error}. {bootstrap_hint}") from error

    def ensure_ready_image(self, image: str, allow_pull: bool = True) -> str:
        """Return ``image`` (a ready NNI image such as msranni/nni), pulling it when missing."""
        if self.image_id(image):
            return image
        if not allow_pull:
            raise ImageError(f"Image {image} is not present and pulling is disabled. Load it with `docker load` or build it.")
        self._report(f"Pulling image {image}")
        try:
            self.engine.client.images.pull(image)
        except docker.errors.APIError as error:
            raise ImageError(
                f"Image {image} is not present and cannot be pulled: {error}. "
                "Load it with `docker load`, or drop --nni-image to let the plugin build an NNI image."
            ) from error
        return image

    # NNI images ----------------------------------------------------------

    def tag_for(self, spec: ImageSpec, base_id: str) -> str:
        digest = _hash_parts(spec.dockerfile(), base_id, spec.constraints(), _wheels_fingerprint(spec.wheels_dir))
        return f"{IMAGE_REPOSITORY}:{spec.nni_version}-{digest}"

    def ensure_nni_image(self, spec: ImageSpec, allow_pull: bool = True) -> str:
        """Return the tag of the NNI image for ``spec``, building it when it is not cached."""
        versions.check_supported(spec.nni_version, base_image=spec.base_image)
        base_id = self.ensure_base(spec.base_image, allow_pull=allow_pull)
        tag = self.tag_for(spec, base_id)

        def write_context(context: Path) -> None:
            build_dir = context / "build"
            build_dir.mkdir()
            (build_dir / "constraints.txt").write_text(spec.constraints())
            if self.ca_bundle is not None:
                shutil.copyfile(self.ca_bundle, build_dir / "ca-bundle.crt")
            if spec.wheels_dir:
                shutil.copytree(spec.wheels_dir, build_dir / "wheels")

        self._build_once(tag, spec.dockerfile(), write_context, {LABEL_IMAGE: "nni", f"{LABEL_PREFIX}.nni-version": spec.nni_version})
        return tag

    def ensure_worker_image(self, nni_image: str) -> str:
        """Return the tag of the SSH worker image on top of ``nni_image``, building it when needed."""
        base_id = self.image_id(nni_image)
        if base_id is None:
            raise ImageError(f"Image {nni_image} is not present; build or pull it before its worker layer.")
        dockerfile = _WORKER_DOCKERFILE.format(nni_image=nni_image, image_etc=IMAGE_ETC, python_path_file=PYTHON_PATH_FILE)
        digest = _hash_parts(dockerfile, base_id, _WORKER_ENTRYPOINT)
        tag = f"{WORKER_REPOSITORY}:{digest}"

        def write_context(context: Path) -> None:
            (context / "worker-entrypoint.sh").write_text(_WORKER_ENTRYPOINT)

        self._build_once(tag, dockerfile, write_context, {LABEL_IMAGE: "worker"})
        return tag

    def _build_once(self, tag: str, dockerfile: str, write_context: Callable[[Path], None], labels: dict[str, str]) -> None:
        if self.image_id(tag):
            logger.debug("Image %s is cached", tag)
            return

        lock_dir = CACHE_DIR / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        lock_path = lock_dir / (tag.replace("/", "_").replace(":", "_") + ".lock")
        with open(lock_path, "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                # Another process may have built it while this one waited on the lock.
                if self.image_id(tag):
                    return
                with tempfile.TemporaryDirectory(prefix="pytest-nni-docker-build-") as context_dir:
                    context = Path(context_dir)
                    (context / "Dockerfile").write_text(dockerfile)
                    write_context(context)
                    self._build(tag, context, labels)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _build(self, tag: str, context: Path, labels: dict[str, str]) -> None:
        self._report(f"Building image {tag}")
        started = time.monotonic()
        output_tail: list[str] = []
        try:
            stream = self.engine.client.api.build(
                path=str(context), tag=tag, labels=labels, rm=True, forcerm=True, decode=True, pull=False,
                timeout=self.build_timeout,
            )
            for chunk in stream:
                if "error" in chunk:
                    detail = chunk.get("error", "").strip()
                    tail = "".join(output_tail[-30:])
                    raise ImageError(f"Building image {tag} failed: {detail}\nLast build output:\n{tail}")
                line = chunk.get("stream", "")
                if line:
                    output_tail.append(line)
                    stripped = line.strip()
                    if stripped.startswith("Step "):
                        self._report(f"{tag}: {stripped}")
                    elif stripped:
                        logger.debug("%s", stripped)
        except docker.errors.APIError as error:
            raise ImageError(f"Building image {tag} failed: {error}") from error
        self._report(f"Built image {tag} in {time.monotonic() - started:.0f} s")


def bootstrap_base_image(suite: str, name: str | None = None, mirror: str = "http://deb.debian.org/debian",
                         engine: Engine | None = None) -> str:
    """Create a Debian base image with python3 from Debian's packages: debootstrap, then import.

    For hosts that reach Debian's package mirror but no container registry. Needs
    root and the debootstrap command. Returns the image name.
    """
    image = name or f"{BASE_REPOSITORY}:{suite}"
    engine = engine or Engine()
    if ImageBuilder(engine, ca_bundle=None).image_id(image):
        logger.info("Base image %s exists", image)
        return image
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed. Install it with `apt-get install -y debootstrap` (as root).")
    if os.geteuid() != 0:
        raise ImageError(f"Bootstrapping {image} needs root: debootstrap creates device files. Run it with sudo.")

    with tempfile.TemporaryDirectory(prefix=f"pytest-nni-docker-rootfs-{suite}-") as rootfs:
        command = ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", suite, rootfs, mirror]
        logger.info("Running %s", " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise ImageError(f"debootstrap of {suite} from {mirror} failed (exit {result.returncode}):\n{tail}")

        repository, tag = image.rsplit(":", 1) if ":" in image else (image, "latest")
        with tempfile.NamedTemporaryFile(prefix="pytest-nni-docker-rootfs-", suffix=".tar") as archive_file:
            with tarfile.open(fileobj=archive_file, mode="w") as archive:
                archive.add(rootfs, arcname=".")
            archive_file.flush()
            try:
                engine.client.api.import_image_from_file(archive_file.name, repository=repository, tag=tag,
                                                         changes=['CMD ["/bin/bash"]'])
            except docker.errors.APIError as error:
                raise ImageError(f"Importing the {suite} root file system as {image} failed: {error}") from error
    logger.info("Imported base image %s", image)
    return image


def describe_image(engine: Engine, tag: str) -> dict[str, str]:
    """Return the labels of an image, for messages."""
    try:
        return dict(engine.client.images.get(tag).labels or {})
    except docker.errors.ImageNotFound:
        return {}


__all__ = ["ImageBuilder", "ImageSpec", "bootstrap_base_image", "default_ca_bundle", "remove_built_images"]


def remove_built_images(engine: Engine) -> int:
    """Remove the NNI and worker images this package built; return how many.

    Images that a container still uses stay, with a warning. Bootstrapped base
    images carry no label and stay too.
    """
    removed = 0
    # Worker images are built on NNI images, so they go first.
    images = engine.client.images.list(filters={"label": LABEL_IMAGE})
    images.sort(key=lambda image: (image.labels or {}).get(LABEL_IMAGE) != "worker")
    for image in images:
        try:
            engine.client.images.remove(image.id, force=False)
            removed += 1
            logger.info("Removed image %s", ", ".join(image.tags) or image.short_id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            logger.warning("Failed to remove image %s: %s", ", ".join(image.tags) or image.short_id, error)
    return removed
