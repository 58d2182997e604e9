"""Bad input caught before any container starts, and later faults that name the value and the fix."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import docker
import pytest

from pytest_nni_docker.engine import LABEL_PLUGIN, LABEL_TEST, Engine
from pytest_nni_docker.errors import ConfigError, ExperimentFailed, ImageError
from pytest_nni_docker.experiment import ExperimentRunner, RunOptions

TESTS = Path(__file__).parent

GOOD = """\
trialCommand: python3 quick_trial.py
trialCodeDirectory: code
trialConcurrency: 1
maxTrialNumber: 1
searchSpaceFile: space.json
tuner:
  name: Random
"""

# (case, config text or None for "write nothing", file to write next to it, expected message parts)
CASES = [
    ("folder_as_config", None, {}, ["is a folder. Pass the path of the YAML file inside it"]),
    ("not_utf8", b"trialCommand: \xff\xfe\n", {}, ["cannot be read", "Check its permissions and encoding (UTF-8)"]),
    ("invalid_yaml", "trialCommand: [python3\n", {}, ["is not valid YAML"]),
    ("yaml_list", "- trialCommand\n", {}, ["must contain a YAML mapping of NNI v2 config keys, not list"]),
    ("v1_config", "authorName: me\nmaxTrialNum: 2\ntrial:\n  command: python3 t.py\n  codeDir: .\n", {},
     ["is in NNI's v1 format (detected by authorName, maxTrialNum, trial)", "trial.command becomes trialCommand"]),
    ("v1_v2_mix", GOOD + "maxTrialNum: 2\n", {}, ["mixes NNI v1 keys (maxTrialNum) with v2 keys", "Use the v2 format only"]),
    ("missing_code_folder", GOOD.replace("trialCodeDirectory: code", "trialCodeDirectory: no_such_folder"), {},
     ["trialCodeDirectory 'no_such_folder' resolves to", "which is not a folder", "relative paths resolve against"]),
    ("missing_search_space", GOOD.replace("space.json", "no_such_space.json"), {},
     ["searchSpaceFile 'no_such_space.json' resolves to", "which does not exist"]),
    ("invalid_search_space", GOOD, {"space.json": "{not json"}, ["space.json is not valid JSON"]),
    ("missing_trial_command", GOOD.replace("trialCommand: python3 quick_trial.py\n", ""), {},
     ["is missing the required key trialCommand"]),
    ("missing_tuner", GOOD.replace("tuner:\n  name: Random\n", ""), {},
     ["is missing the required key tuner", "tuner: {name: Random}"]),
    ("concurrency_text", GOOD.replace("trialConcurrency: 1", "trialConcurrency: two"), {},
     ["trialConcurrency must be a positive integer, not 'two'"]),
    ("max_trials_zero", GOOD.replace("maxTrialNumber: 1", "maxTrialNumber: 0"), {},
     ["maxTrialNumber must be a positive integer, not 0"]),
    ("duration_text", GOOD + "maxExperimentDuration: soon\n", {},
     ["maxExperimentDuration must be a duration such as \"30s\", \"10m\" or \"1h\"", "not 'soon'"]),
    ("command_list", GOOD.replace("trialCommand: python3 quick_trial.py", "trialCommand: [python3, t.py]"), {},
     ["trialCommand must be a shell command as a string, not ['python3', 't.py']"]),
    ("unknown_platform", GOOD + "trainingService:\n  platform: mycluster\n", {},
     ["trainingService.platform 'mycluster' is not an NNI training platform. Use one of: local, remote"]),
    ("unsupported_platform", GOOD + "trainingService:\n  platform: kubeflow\n", {},
     ["trainingService.platform 'kubeflow' is not supported by pytest-nni-docker. Use one of: local, remote"]),
    ("misspelled_key", GOOD + "trailConcurrency: 2\n", {}, ["has unknown keys: trailConcurrency", "Check their spelling"]),
]


def containers_of(test_name: str) -> list[str]:
    client = docker.from_env()
    try:
        return [c.name for c in client.containers.list(all=True, filters={"label": [LABEL_PLUGIN, f"{LABEL_TEST}={test_name}"]})]
    finally:
        client.close()


@pytest.mark.nni_docker
@pytest.mark.parametrize(("case", "text", "files", "expected"), CASES, ids=[case[0] for case in CASES])
def test_bad_config_rejected_early(nni_experiment, request, tmp_path, case, text, files, expected):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "quick_trial.py").write_text("print('never runs')\n")
    (tmp_path / "space.json").write_text('{"x": {"_type": "choice", "_value": [1]}}')
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    config = tmp_path / "config.yml"
    if text is None:
        config = tmp_path / "code"
    elif isinstance(text, bytes):
        config.write_bytes(text)
    else:
        config.write_text(text)

    with pytest.raises(ConfigError) as caught:
        nni_experiment.run(config)

    message = str(caught.value)
    print(f"\n[{case}] {message}")
    for part in expected:
        assert part in message
    assert str(tmp_path) in message
    assert containers_of(request.node.nodeid) == []


@pytest.mark.nni_docker(image="pytest-nni-docker/no-such-image:0", allow_pull=False)
def test_missing_ready_image_not_pulled(nni_experiment, request):
    with pytest.raises(ImageError) as caught:
        nni_experiment.run(TESTS / "data" / "known_function" / "config.yml")

    message = str(caught.value)
    print(f"\n{message}")
    assert "Image pytest-nni-docker/no-such-image:0 is not present and pulling is disabled" in message
    assert "docker load" in message
    assert containers_of(request.node.nodeid) == []


# An image whose entrypoint starts a web server on NNI's port before the command,
# as an image made for something else might.
_PORT_BUSY_DOCKERFILE = """\
FROM {image}
ENTRYPOINT ["sh", "-c", "python3 -m http.server 8080 >/dev/null 2>&1 & sleep 1; exec \\"$@\\"", "--"]
"""


@pytest.mark.nni_docker(timeout=120)
def test_port_in_use_names_port(nni_experiment):
    """A real image that occupies NNI's port 8080: nnictl create fails, and the message names the port."""
    client = docker.from_env()
    tag = f"pytest-nni-docker/test-port-busy:{uuid.uuid4().hex[:8]}"
    dockerfile = _PORT_BUSY_DOCKERFILE.format(image=nni_experiment.image).encode()
    client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True, forcerm=True, pull=False,
                        labels={LABEL_PLUGIN: "1"})
    engine = Engine()
    runner = ExperimentRunner(engine, tag, "3.0", RunOptions(timeout=120, no_progress_timeout=60), test_name="port-busy")
    try:
        with pytest.raises(ExperimentFailed) as caught:
            runner.run({"trialCodeDirectory": "cases", "trialCommand": "python3 quick_trial.py", "trialConcurrency": 1,
                        "maxTrialNumber": 1, "searchSpace": {"x": {"_type": "choice", "_value": [1]}},
                        "tuner": {"name": "Random"}}, base_dir=TESTS)
    finally:
        engine.remove_session_objects()
        client.images.remove(tag, force=True)
        client.close()

    message = str(caught.value)
    print(f"\n{message}")
    assert caught.value.reason == "submit_failed"
    assert message.startswith("Port 8080 in manager container nni-docker-")
    assert "is in use by another process" in message
    assert f"Image {tag} starts a program on that port" in message
    assert engine.client.containers.list(all=True, filters={"label": f"io.github.pytest-nni-docker.session={engine.session_id}"}) == []
