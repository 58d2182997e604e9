"""The ``python -m pytest_nni_docker`` command: base images, image builds and cleanup."""

from __future__ import annotations

import argparse
import logging
import sys

from pytest_nni_docker import versions
from pytest_nni_docker.engine import Engine
from pytest_nni_docker.errors import NniDockerError
from pytest_nni_docker.images import ImageBuilder, ImageSpec, bootstrap_base_image, remove_built_images
from pytest_nni_docker.ssh import remove_stale_key_folders
from pytest_nni_docker.settings import DEFAULT_BASE_IMAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_nni_docker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    bootstrap = commands.add_parser("bootstrap-base", help="create a Debian base image from Debian's packages (root, debootstrap)")
    bootstrap.add_argument("suites", nargs="+", metavar="SUITE", help="Debian suite: bookworm (Python 3.11) or bullseye (Python 3.9)")
    bootstrap.add_argument("--mirror", default="http://deb.debian.org/debian", help="Debian mirror URL (default: %(default)s)")

    build = commands.add_parser("build", help="build (or find in the cache) the NNI image for a version and base image")
    build.add_argument("--nni-version", default=versions.DEFAULT_NNI_VERSION, help="NNI version (default: %(default)s)")
    build.add_argument("--base-image", default=DEFAULT_BASE_IMAGE, help="base image with python3 (default: %(default)s)")
    build.add_argument("--pip", action="append", default=[], metavar="REQUIREMENT", help="extra pip requirement (repeatable)")
    build.add_argument("--worker", action="store_true", help="also build the SSH worker layer")

    cleanup = commands.add_parser("cleanup", help="remove containers and networks of runs that are gone")
    cleanup.add_argument("--kept", action="store_true", help="also remove containers kept with --nni-keep")
    cleanup.add_argument("--images", action="store_true",
                         help="also remove the NNI and worker images the plugin built (a cache: rebuilt when needed); "
                              "base images stay")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "bootstrap-base":
            for suite in args.suites:
                print(bootstrap_base_image(suite, mirror=args.mirror))
        elif args.command == "build":
            builder = ImageBuilder(Engine())
            tag = builder.ensure_nni_image(ImageSpec(args.nni_version, args.base_image, tuple(args.pip)))
            print(tag)
            if args.worker:
                print(builder.ensure_worker_image(tag))
        elif args.command == "cleanup":
            engine = Engine()
            removed = engine.remove_stale_objects()
            if args.kept:
                removed += engine.remove_kept_objects()
            folders = remove_stale_key_folders()
            print(f"Removed {removed} Docker objects (containers, networks and volumes) and {folders} SSH key folders.")
            if args.images:
                print(f"Removed {remove_built_images(engine)} images built by pytest-nni-docker.")
    except NniDockerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
