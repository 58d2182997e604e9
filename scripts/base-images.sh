#!/bin/sh
# Create the Debian base images that NNI images are built on, when they are
# missing: debootstrap from Debian's packages, then `docker import`. For hosts
# with no container registry. Needs root for debootstrap; existing images are kept.
#
# Usage: scripts/base-images.sh [SUITE...]   (default: bookworm bullseye)
set -eu

PYTHON=${PYTHON:-python3}
SUITES=${*:-bookworm bullseye}

missing=""
for suite in $SUITES; do
    if ! docker image inspect "pytest-nni-docker/debian:$suite" >/dev/null 2>&1; then
        missing="$missing $suite"
    fi
done
if [ -z "$missing" ]; then
    echo "base-images: present for $SUITES"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "base-images: debootstrap is missing; install it with: sudo apt-get install -y debootstrap" >&2
        exit 1
    fi
    echo "base-images: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
fi

# shellcheck disable=SC2086
"$PYTHON" -m pytest_nni_docker bootstrap-base $missing
