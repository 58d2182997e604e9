#!/bin/sh
# Make a Docker daemon available on a Debian or Ubuntu host.
#
# As root: installs docker.io from the distribution's packages when dockerd is
# missing, starts dockerd in the background when no daemon responds (hosts
# without systemd, such as CI containers), and waits until `docker info` succeeds.
# As another user: checks that a daemon answers and says what to do when not.
set -eu

WAIT_SECONDS=${DOCKER_UP_WAIT_SECONDS:-60}
LOG_FILE=${DOCKER_UP_LOG:-/var/log/dockerd.log}

daemon_answers() {
    docker info >/dev/null 2>&1
}

if command -v docker >/dev/null 2>&1 && daemon_answers; then
    echo "docker-up: the Docker daemon is running"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "docker-up: no Docker daemon responds and this user is not root." >&2
    echo "docker-up: start Docker (sudo systemctl start docker), add yourself to the docker group, or set DOCKER_HOST." >&2
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "docker-up: installing docker.io from the distribution's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
fi

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    echo "docker-up: starting docker with systemctl"
    systemctl start docker
else
    echo "docker-up: starting dockerd in the background (log: $LOG_FILE)"
    # A pid file left by a daemon that was killed makes dockerd refuse to start.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    nohup dockerd >"$LOG_FILE" 2>&1 &
fi

elapsed=0
until daemon_answers; do
    if [ "$elapsed" -ge "$WAIT_SECONDS" ]; then
        echo "docker-up: the Docker daemon did not respond within $WAIT_SECONDS s. Last lines of $LOG_FILE:" >&2
        tail -n 20 "$LOG_FILE" >&2 || true
        exit 1
    fi
    sleep 1
    elapsed=$((elapsed + 1))
done
echo "docker-up: the Docker daemon responded after ${elapsed} s"
