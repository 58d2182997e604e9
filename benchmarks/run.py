"""Measure what pytest-nni-docker adds to the time NNI itself needs, in one run.

From the repository root, with a Docker daemon and the base image
``pytest-nni-docker/debian:bookworm`` present (``make base-images``)::

    .venv/bin/python -m benchmarks.run                   # about 7 minutes on 2 cores
    .venv/bin/python -m benchmarks.run --rounds 3 --suite-rounds 1 --remote-suite-rounds 1 --quick-pool

It measures, on the experiment in ``benchmarks/experiment`` (8 trials of about
1 s, 2 at a time):

1. the image step on a warm cache (``ImageBuilder.ensure_nni_image`` when the
   image exists);
2. bare NNI runs (``bare_run.py``) and plugin runs (``plugin_run.py``). They
   are interleaved, and which goes first alternates, so that both see the same
   load. Each pair gives the ratio plugin/bare and the overhead in seconds, and
   each step shows where the difference goes;
3. a suite of 5 tests with 2 trials each, with and without ``--nni-reuse-manager``,
   interleaved, in local mode and in remote mode (2 SSH workers per test);
4. the remote pool's start time for 1, 2, 4 and 8 workers, through
   ``benchmarks/pool_start.py`` when that script exists;
5. the peak memory (max RSS) of the pytest process.

It prints medians and writes every sample to ``benchmarks/results/`` as JSON.
The machine's 1-minute load average is recorded before each pair. With
``--max-load`` the script waits until the load is below it before it starts;
the benchmark's own runs raise the load afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bare_run import run_bare
from benchmarks.common import REPOSITORY, load_average, machine, median, nni_image
from benchmarks.plugin_run import run_plugin
from pytest_nni_docker.engine import Engine
from pytest_nni_docker.images import ImageBuilder, ImageSpec
from pytest_nni_docker.settings import DEFAULT_BASE_IMAGE

RESULTS_DIR = REPOSITORY / "benchmarks" / "results"
STEPS = ("container_start", "code_copy", "manager_start", "wait", "collect", "stop_and_remove", "end_noticed_after")


def wait_for_quiet(max_load: float | None, patience: float) -> None:
    """Wait until the 1-minute load average is below ``max_load``, at most ``patience`` seconds."""
    if max_load is None:
        return
    deadline = time.monotonic() + patience
    while load_average() >= max_load and time.monotonic() < deadline:
        print(f"  load {load_average():.2f} >= {max_load}; waiting", flush=True)
        time.sleep(15)


def measure_image_step(samples: int = 5) -> list[float]:
    """Return seconds of ``ensure_nni_image`` on a warm cache, each with a new Docker connection."""
    spec = ImageSpec("3.0", DEFAULT_BASE_IMAGE)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        ImageBuilder(Engine()).ensure_nni_image(spec, allow_pull=False)
        times.append(time.perf_counter() - started)
    return times


def measure_pairs(image: str, rounds: int) -> list[dict]:
    """Run bare and plugin runs side by side; bare goes first in even rounds, the plugin in odd ones."""
    pairs = []
    for number in range(rounds):
        load = load_average()
        if number % 2 == 0:
            bare = run_bare(image)
            plugin = run_plugin()
        else:
            plugin = run_plugin()
            bare = run_bare(image)
        test = next(iter(plugin["tests"].values()))
        pair = {"load": load, "bare": bare, "plugin_test": test["test"], "plugin_steps": test["runs"][0],
                "plugin_process": plugin["process"], "peak_rss_mib": plugin["peak_rss_mib"]}
        pair["ratio"] = pair["plugin_test"] / bare["total"]
        pair["overhead"] = pair["plugin_test"] - bare["total"]
        print(f"  round {number + 1}/{rounds}: load {load:.2f}, bare {bare['total']:.2f} s, plugin {pair['plugin_test']:.2f} s, "
              f"ratio {pair['ratio']:.3f}", flush=True)
        pairs.append(pair)
    return pairs


def measure_suites(rounds: int, tests: int, trials: int, mode: str = "local") -> list[dict]:
    """Run a suite of ``tests`` tests with and without reuse, interleaved.

    In remote mode each test gets a pool of 2 workers, and reuse shares the pool too.
    """
    suites = []
    for number in range(rounds):
        load = load_average()
        order = (False, True) if number % 2 == 0 else (True, False)
        measured = {reuse: run_plugin(tests=tests, trials=trials, reuse=reuse, mode=mode) for reuse in order}
        suite = {"load": load}
        for reuse, name in ((False, "separate"), (True, "reuse")):
            entries = measured[reuse]["tests"].values()
            per_test = [entry["test"] for entry in entries]
            # The steps that reuse changes: getting a manager and giving it back.
            container_steps = sum(run.get("container_start", 0.0) + run.get("stop_and_remove", 0.0)
                                  for entry in entries for run in entry["runs"])
            suite[name] = {"tests": sum(per_test), "per_test": per_test, "container_steps": container_steps,
                           "process": measured[reuse]["process"], "peak_rss_mib": measured[reuse]["peak_rss_mib"]}
        suite["saved"] = suite["separate"]["tests"] - suite["reuse"]["tests"]
        print(f"  {mode} suite round {number + 1}/{rounds}: load {load:.2f}, separate {suite['separate']['tests']:.2f} s, "
              f"reuse {suite['reuse']['tests']:.2f} s", flush=True)
        suites.append(suite)
    return suites


def measure_pool(quick: bool) -> dict:
    """Return the median pool start time per pool size from ``benchmarks/pool_start.py``, or why there is none."""
    script = REPOSITORY / "benchmarks" / "pool_start.py"
    if not script.exists():
        return {"missing": "benchmarks/pool_start.py does not exist yet"}
    command = [sys.executable, str(script), "--runs", "1" if quick else "3", "--sizes", "1", "2", "4", "8"]
    completed = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True)
    if completed.returncode != 0:
        return {"missing": f"benchmarks/pool_start.py failed (exit {completed.returncode}): {completed.stderr.strip()[-1000:]}"}
    # pool_start.py prints one row per size: workers, median, min, max, then every run.
    medians = {}
    for line in completed.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0].isdigit():
            medians[fields[0]] = float(fields[1])
    if not medians:
        return {"missing": f"benchmarks/pool_start.py printed no rows:\n{completed.stdout}"}
    return {"median_seconds_by_workers": medians, "output": completed.stdout}


def _outside_nni(pair: dict) -> float:
    """Return the plugin's extra seconds in the steps that are not NNI's: all but ``manager_start`` and ``wait``.

    NNI starts each wave of trials on its own timers, so the ``wait`` step of two
    runs of one experiment differs by a second or more. This difference
    leaves that noise out.
    """
    steps = pair["plugin_steps"]
    plugin = pair["plugin_test"] - steps["manager_start"] - steps["wait"]
    bare = pair["bare"]["total"] - pair["bare"]["manager_start"] - pair["bare"]["wait"]
    return plugin - bare


def summarize(report: dict) -> list[str]:
    """Return the human-readable summary lines of a benchmark report."""
    pairs = report["pairs"]
    lines = [f"image step, warm cache: median {median(report['image_step']) * 1000:.0f} ms of {len(report['image_step'])}"]
    if pairs:
        bare = [pair["bare"]["total"] for pair in pairs]
        plugin = [pair["plugin_test"] for pair in pairs]
        lines += [
            f"bare NNI run:        median {median(bare):.2f} s of {len(bare)}",
            f"plugin test:         median {median(plugin):.2f} s of {len(plugin)} (whole pytest process {median([p['plugin_process'] for p in pairs]):.2f} s)",
            f"ratio plugin/bare:   median {median([p['ratio'] for p in pairs]):.3f} (per pair: "
            + ", ".join(f"{p['ratio']:.3f}" for p in pairs) + ")",
            f"overhead:            median {median([p['overhead'] for p in pairs]):.2f} s",
            f"overhead outside NNI's own time (all but manager_start and wait): median {median([_outside_nni(p) for p in pairs]):.2f} s",
            f"load average:        {min(p['load'] for p in pairs):.2f} to {max(p['load'] for p in pairs):.2f}",
            "steps (median s)     bare     plugin   difference",
        ]
        for step in STEPS:
            bare_step = median([pair["bare"].get(step, 0.0) for pair in pairs])
            plugin_step = median([pair["plugin_steps"].get(step, 0.0) for pair in pairs])
            lines.append(f"  {step:<18} {bare_step:7.2f}  {plugin_step:7.2f}  {plugin_step - bare_step:+7.2f}")
        outside = [pair["plugin_test"] - sum(v for k, v in pair["plugin_steps"].items() if k != "end_noticed_after") for pair in pairs]
        lines.append(f"  {'pytest and fixtures':<18} {0.0:7.2f}  {median(outside):7.2f}  {median(outside):+7.2f}")
        lines.append(f"peak memory of the pytest process: median {median([p['peak_rss_mib'] for p in pairs]):.0f} MiB")
    for label, key in (("local", "suites"), ("remote", "remote_suites")):
        suites = report.get(key) or []
        if not suites:
            continue
        separate = median([suite["separate"]["tests"] for suite in suites])
        shared = median([suite["reuse"]["tests"] for suite in suites])
        lines.append(f"{label} suite of {len(suites[0]['separate']['per_test'])} tests: separate containers {separate:.2f} s, "
                     f"--nni-reuse-manager {shared:.2f} s, saved median {median([s['saved'] for s in suites]):.2f} s "
                     f"({len(suites)} rounds)")
        if label == "local" and all("container_steps" in suite["separate"] for suite in suites):
            lines.append(f"  container start and removal over the suite: separate "
                         f"{median([s['separate']['container_steps'] for s in suites]):.2f} s, reuse "
                         f"{median([s['reuse']['container_steps'] for s in suites]):.2f} s")
    pool = report["pool"]
    if "missing" in pool:
        lines.append(f"pool start: not measured, {pool['missing']}")
    else:
        medians = pool["median_seconds_by_workers"]
        lines.append("pool start (median s by workers): " + ", ".join(f"{size}: {seconds:.2f}" for size, seconds in medians.items()))
        if "1" in medians and "8" in medians:
            lines.append(f"pool start ratio 8 workers / 1 worker: {medians['8'] / medians['1']:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="bare and plugin runs of each kind (default: 5)")
    parser.add_argument("--suite-rounds", type=int, default=3, help="suite runs with and without reuse, 0 to skip (default: 3)")
    parser.add_argument("--suite-tests", type=int, default=5, help="tests in the reuse suite (default: 5)")
    parser.add_argument("--suite-trials", type=int, default=2, help="trials per test in the reuse suite (default: 2)")
    parser.add_argument("--remote-suite-rounds", type=int, default=3,
                        help="remote-mode suite runs (2 workers per test) with and without reuse, 0 to skip (default: 3)")
    parser.add_argument("--skip-pool", action="store_true", help="do not measure the remote pool's start")
    parser.add_argument("--quick-pool", action="store_true", help="measure the pool's start once per size instead of 3 times")
    parser.add_argument("--max-load", type=float, default=None,
                        help="before measuring, wait until the 1-minute load average is below this")
    parser.add_argument("--patience", type=float, default=600,
                        help="seconds to wait for --max-load before measuring anyway (default: 600)")
    args = parser.parse_args(argv)

    report: dict = {"machine": machine(), "command": " ".join(["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])])}
    print(f"Machine: {report['machine']}", flush=True)
    wait_for_quiet(args.max_load, args.patience)
    report["started"] = time.strftime("%Y-%m-%d %H:%M:%S")
    report["load_at_start"] = load_average()
    image = nni_image()

    print("Image step on a warm cache", flush=True)
    report["image_step"] = measure_image_step()

    print("Warm-up runs (not counted)", flush=True)
    run_bare(image, trials=2)
    run_plugin(trials=2)

    print("Bare and plugin runs, interleaved", flush=True)
    report["pairs"] = measure_pairs(image, args.rounds)

    report["suites"] = []
    if args.suite_rounds > 0:
        print(f"Suites of {args.suite_tests} tests with and without --nni-reuse-manager", flush=True)
        report["suites"] = measure_suites(args.suite_rounds, args.suite_tests, args.suite_trials)

    report["remote_suites"] = []
    if args.remote_suite_rounds > 0:
        print(f"Remote-mode suites of {args.suite_tests} tests with and without --nni-reuse-manager", flush=True)
        report["remote_suites"] = measure_suites(args.remote_suite_rounds, args.suite_tests, args.suite_trials, mode="remote")

    report["pool"] = {"missing": "skipped with --skip-pool"} if args.skip_pool else measure_pool(args.quick_pool)
    report["load_at_end"] = load_average()

    lines = summarize(report)
    print("\n".join(["", *lines]))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"benchmark-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report["summary"] = lines
    path.write_text(json.dumps(report, indent=2))
    print(f"\nAll samples: {path.relative_to(REPOSITORY)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
