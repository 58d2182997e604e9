"""Parallel runs with pytest-xdist: no clash of names, ports, networks or images, and nothing left behind."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import docker

from pytest_nni_docker.engine import LABEL_PLUGIN, LABEL_TEST, list_containers

CASES = Path(__file__).parent / "cases"

FOUR_EXPERIMENTS = """
    import pytest

    @pytest.mark.nni_docker(timeout=300)
    @pytest.mark.parametrize("value", [0.1, 0.2, 0.3, 0.4])
    def test_experiment(nni_experiment, value):
        result = nni_experiment.run({
            "trialCodeDirectory": "cases",
            "trialCommand": "python3 quick_trial.py",
            "trialConcurrency": 2,
            "maxTrialNumber": 2,
            "searchSpace": {"x": {"_type": "choice", "_value": [value, value + 0.5]}},
            "tuner": {"name": "Random"},
        })
        assert len(result.succeeded) == 2
        assert sorted(trial.final_metric for trial in result.trials) == [value, value + 0.5]
"""


def plugin_objects_of_module(module: str) -> list[str]:
    """Return the plugin's containers and networks whose test label belongs to ``module``."""
    client = docker.from_env()
    try:
        names = [c.name for c in list_containers(client, {"label": LABEL_PLUGIN})
                 if c.labels.get(LABEL_TEST, "").startswith(f"{module}.py::")]
        names += [n.name for n in client.networks.list(filters={"label": LABEL_PLUGIN})
                  if (n.attrs.get("Labels") or {}).get(LABEL_TEST, "").startswith(f"{module}.py::")]
        return names
    finally:
        client.close()


def test_four_experiments_on_two_workers(pytester):
    shutil.copytree(CASES, pytester.path / "cases")
    module = f"test_parallel_{uuid.uuid4().hex[:8]}"
    pytester.makepyfile(**{module: FOUR_EXPERIMENTS})

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-v")

    result.assert_outcomes(passed=4)
    # Both workers ran experiments.
    result.stdout.fnmatch_lines(["*gw0*PASSED*"])
    result.stdout.fnmatch_lines(["*gw1*PASSED*"])
    assert plugin_objects_of_module(module) == []
