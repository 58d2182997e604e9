"""Bad input caught before any container starts, and later faults that name the value and the fix."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import docker
import pytest

from pytest_nni_docker.config import prepare_experiment
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
    ("search_space_type_typo", GOOD, {"space.json": '{"x": {"_type": "choise", "_value": [1, 2]}}'},
     ["search space entry 'x' has the unknown _type 'choise'. Did you mean 'choice'?",
      "Known types: choice, randint, uniform, quniform, loguniform, qloguniform, normal, qnormal, lognormal, qlognormal"]),
    ("search_space_value_not_list", GOOD, {"space.json": '{"x": {"_type": "uniform", "_value": 3}}'},
     ["search space entry 'x' (uniform) must have a list as _value, not 3"]),
    ("search_space_empty_choice", GOOD, {"space.json": '{"x": {"_type": "choice", "_value": []}}'},
     ["search space entry 'x' (choice) has an empty _value"]),
    ("search_space_uniform_three", GOOD, {"space.json": '{"x": {"_type": "uniform", "_value": [0, 1, 2]}}'},
     ["search space entry 'x' (uniform) must have _value [low, high] with 2 numbers, not [0, 1, 2]"]),
    ("search_space_quniform_two", GOOD, {"space.json": '{"x": {"_type": "quniform", "_value": [0, 1]}}'},
     ["search space entry 'x' (quniform) must have _value [low, high, q] with 3 numbers, not [0, 1]"]),
    ("search_space_text_bound", GOOD, {"space.json": '{"x": {"_type": "normal", "_value": ["0", 1]}}'},
     ["search space entry 'x' (normal) must have _value [mu, sigma] with 2 numbers"]),
    ("search_space_low_above_high", GOOD, {"space.json": '{"x": {"_type": "randint", "_value": [5, 1]}}'},
     ["search space entry 'x' (randint) must have low < high, not [5, 1]"]),
    ("search_space_loguniform_zero", GOOD, {"space.json": '{"x": {"_type": "qloguniform", "_value": [0, 8, 1]}}'},
     ["search space entry 'x' (qloguniform) must have low > 0 for a log scale, not 0"]),
    ("search_space_nested_typo", GOOD,
     {"space.json": '{"model": {"_type": "choice", "_value": [{"_name": "svm", "C": {"_type": "unifrom", "_value": [0, 1]}},'
                    ' {"_name": "tree"}]}}'},
     ["search space entry 'model/svm/C' has the unknown _type 'unifrom'. Did you mean 'uniform'?"]),
    ("tuner_key_typo", GOOD.replace("  name: Random\n", "  name: TPE\n  clasArgs:\n    optimize_mode: maximize\n"), {},
     ["tuner has the unknown key clasArgs. Did you mean classArgs?", "Known keys: name, className, codeDirectory, classArgs"]),
    ("assessor_key_typo", GOOD + "assessor:\n  name: Medianstop\n  classArg: {}\n", {},
     ["assessor has the unknown key classArg. Did you mean classArgs?"]),
    ("local_service_key_typo", GOOD + "trainingService:\n  platform: local\n  useActiveGpus: false\n", {},
     ["trainingService has the unknown key useActiveGpus. Did you mean useActiveGpu?",
      "Known keys: platform, useActiveGpu, maxTrialNumberPerGpu, gpuIndices, reuseMode"]),
    ("use_active_gpu_text", GOOD + "trainingService:\n  platform: local\n  useActiveGpu: 'yes'\n", {},
     ["trainingService.useActiveGpu must be true or false, not 'yes'"]),
    ("trials_per_gpu_zero", GOOD + "trainingService:\n  platform: local\n  maxTrialNumberPerGpu: 0\n", {},
     ["trainingService.maxTrialNumberPerGpu must be a positive integer, not 0"]),
    ("service_code_folder", GOOD + "trainingService:\n  platform: local\n  trialCodeDirectory: code\n", {},
     ["trainingService.trialCodeDirectory is not supported", "Set trialCodeDirectory at the top level"]),
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


@pytest.mark.nni_docker
def test_nested_choice_accepted(nni_experiment, tmp_path):
    """NNI's nested-choice form passes the search space check; the run then fails at the missing folder."""
    space = {"model": {"_type": "choice", "_value": [
        {"_name": "svm", "C": {"_type": "loguniform", "_value": [0.01, 10]}, "kernel": {"_type": "choice", "_value": ["rbf"]}},
        {"_name": "tree", "depth": {"_type": "randint", "_value": [1, 8]}},
    ]}}
    config = {"trialCommand": "python3 t.py", "trialCodeDirectory": "no_such_folder", "trialConcurrency": 1,
              "searchSpace": space, "tuner": {"name": "Random"}}

    with pytest.raises(ConfigError) as caught:
        nni_experiment.run(config, base_dir=tmp_path)

    assert "trialCodeDirectory 'no_such_folder'" in str(caught.value)


def test_remote_service_gpu_key_rejected(tmp_path):
    (tmp_path / "code").mkdir()
    config = {"trialCommand": "python3 t.py", "trialCodeDirectory": "code", "trialConcurrency": 1,
              "searchSpace": {"x": {"_type": "choice", "_value": [1]}}, "tuner": {"name": "Random"},
              "trainingService": {"platform": "remote", "machineList": [], "useActiveGpu": True}}

    with pytest.raises(ConfigError) as caught:
        prepare_experiment(config, base_dir=tmp_path, platform="remote")

    message = str(caught.value)
    print(f"\n{message}")
    assert "trainingService.useActiveGpu is not a key of NNI's remote training service" in message
    assert "belongs to each machineList entry" in message


@pytest.mark.nni_docker
def test_big_upload_rejected_early(nni_experiment, request, tmp_path):
    """A trial code folder above NNI's 300 MB limit fails with ConfigError before any container starts."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "quick_trial.py").write_text("print('never runs')\n")
    with open(tmp_path / "code" / "data.bin", "wb") as handle:
        handle.truncate(301 * 2**20)  # sparse, so it costs no disk space
    config = {"trialCommand": "python3 quick_trial.py", "trialCodeDirectory": "code", "trialConcurrency": 1,
              "searchSpace": {"x": {"_type": "choice", "_value": [1]}}, "tuner": {"name": "Random"}}

    with pytest.raises(ConfigError) as caught:
        nni_experiment.run(config, base_dir=tmp_path)

    message = str(caught.value)
    print(f"\n{message}")
    assert f"the folder {tmp_path / 'code'} contains 301.0 MB of files to copy" in message
    assert "above NNI's limit of 300 MB" in message
    assert f"list them in {tmp_path / 'code' / '.nniignore'}" in message
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
