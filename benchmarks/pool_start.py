"""Measure how long a remote-mode pool of SSH workers takes to start.

Starts pools of 1, 2, 4 and 8 workers several times each and prints the median
time from ``RemotePool.start`` to every worker being ready: an SSH login that
finds NNI, and on one worker imports it. Workers start in parallel, so the time
should grow little with the pool size. Every pool is removed before the next
starts.

    .venv/bin/python benchmarks/pool_start.py [--runs 5] [--sizes 1 2 4 8] [--nni-version 3.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from pytest_nni_docker import versions  # noqa: E402
from pytest_nni_docker.engine import Engine  # noqa: E402
from pytest_nni_docker.images import ImageBuilder, ImageSpec  # noqa: E402
from pytest_nni_docker.pool import RemotePool  # noqa: E402
from pytest_nni_docker.ssh import Credentials  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="pools started per size (default: 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8], help="numbers of workers (default: 1 2 4 8)")
    parser.add_argument("--nni-version", default="3.0", help="NNI version in the workers (default: 3.0)")
    parser.add_argument("--auth", choices=("key", "password"), default="key", help="SSH login (default: key)")
    arguments = parser.parse_args()

    engine = Engine()
    builder = ImageBuilder(engine)
    python = "3.9" if arguments.nni_version.startswith("2.10") else "3.11"
    spec = ImageSpec(arguments.nni_version, versions.base_image_for_python(python))
    worker_image = builder.ensure_worker_image(builder.ensure_nni_image(spec, allow_pull=False))
    credentials = Credentials.generate(arguments.auth)

    print(f"worker image {worker_image}, NNI {arguments.nni_version}, {arguments.auth} auth, {arguments.runs} runs per size")
    print(f"{'workers':>7}  {'median s':>8}  {'min s':>6}  {'max s':>6}  all runs (s)")
    try:
        for size in arguments.sizes:
            times = []
            for _ in range(arguments.runs):
                pool = RemotePool(engine, worker_image, arguments.nni_version, credentials, size=size,
                                  test_name="benchmarks/pool_start.py")
                began = time.monotonic()
                try:
                    pool.start()
                    times.append(time.monotonic() - began)
                finally:
                    pool.remove()
            runs = " ".join(f"{value:.2f}" for value in times)
            print(f"{size:>7}  {statistics.median(times):>8.2f}  {min(times):>6.2f}  {max(times):>6.2f}  {runs}", flush=True)
    finally:
        credentials.remove()
        engine.remove_session_objects()


if __name__ == "__main__":
    main()
