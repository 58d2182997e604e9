"""Loading and checking NNI v2 experiment configs before any container starts.

Relative ``trialCodeDirectory``, ``searchSpaceFile`` and tuner ``codeDirectory``
paths resolve against the config file's folder, as ``nnictl`` does.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_nni_docker.errors import ConfigError

# Keys that only NNI's v1 config format has. A config with any of them is v1.
V1_KEYS = frozenset({
    "authorName", "maxExecDuration", "maxTrialNum", "trainingServicePlatform", "searchSpacePath",
    "useAnnotation", "trial", "localConfig", "remoteConfig", "logDir", "multiPhase", "multiThread",
    "versionCheck", "logCollection", "paiConfig", "kubeflowConfig",
})
# Keys of the v2 format that v1 does not have.
V2_ONLY_KEYS = frozenset({
    "trialCommand", "trialCodeDirectory", "trainingService", "searchSpace", "searchSpaceFile",
    "maxTrialNumber", "maxExperimentDuration", "maxTrialDuration", "trialGpuNumber", "experimentWorkingDirectory",
    "tunerGpuIndices", "nniManagerIp", "useAnnotation",
})
V2_KEYS = V2_ONLY_KEYS | frozenset({
    "experimentName", "experimentType", "trialConcurrency", "debug", "logLevel", "tuner", "assessor", "advisor",
    "sharedStorage", "maxTrialNumberPerGpu", "nniManagerIp",
})
SUPPORTED_PLATFORMS = ("local", "remote")
KNOWN_PLATFORMS = frozenset({
    "local", "remote", "openpai", "aml", "kubeflow", "frameworkcontroller", "adl", "dlc", "hybrid",
})
_DURATION = re.compile(r"^\s*\d+(\.\d+)?\s*(s|m|h|d)\s*$")

# Where the manager container keeps what the plugin copies into it.
CONTAINER_ROOT = "/nni"


@dataclass
class PreparedExperiment:
    """A checked config, ready to be copied into a manager container.

    ``config`` is what the manager gets: the search space inline and every
    folder rewritten to its place under ``CONTAINER_ROOT``. ``uploads`` maps each
    folder in the container to the host folder copied there.
    """

    config: dict[str, Any]
    source: Path | None
    code_dir: Path
    search_space: dict[str, Any]
    uploads: dict[str, Path] = field(default_factory=dict)

    @property
    def optimize_mode(self) -> str:
        for key in ("tuner", "advisor"):
            section = self.config.get(key) or {}
            mode = (section.get("classArgs") or {}).get("optimize_mode")
            if mode:
                return str(mode)
        return "maximize"

    @property
    def max_trial_number(self) -> int | None:
        value = self.config.get("maxTrialNumber")
        return int(value) if value is not None else None

    @property
    def platform(self) -> str:
        return (self.config.get("trainingService") or {}).get("platform", "local")


def _where(source: Path | None) -> str:
    return f"Config {source}" if source else "The config dict"


def load_config(config: str | Path | dict[str, Any], base_dir: Path | None = None) -> tuple[dict[str, Any], Path | None, Path]:
    """Return ``(config dict, config path or None, folder that relative paths resolve against)``."""
    if isinstance(config, dict):
        return copy.deepcopy(config), None, (base_dir or Path.cwd()).resolve()

    if not isinstance(config, (str, Path)):
        raise ConfigError(f"The experiment config must be a path to a YAML file or a dict, not {type(config).__name__}.")

    path = Path(config)
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    path = path.resolve()
    if not path.exists():
        raise ConfigError(f"Config file {path} does not exist. Pass the path of an NNI v2 YAML config, or a dict.")
    if path.is_dir():
        raise ConfigError(f"Config path {path} is a folder. Pass the path of the YAML file inside it, such as {path / 'config.yml'}.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Config file {path} cannot be read: {error}. Check its permissions and encoding (UTF-8).") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"Config file {path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must contain a YAML mapping of NNI v2 config keys, not {type(data).__name__}.")
    return data, path, path.parent


def _check_format(config: dict[str, Any], where: str) -> None:
    v1 = sorted(k for k in config if k in V1_KEYS - {"useAnnotation"})
    v2 = sorted(k for k in config if k in V2_ONLY_KEYS - {"useAnnotation"})
    if v1 and v2:
        raise ConfigError(
            f"{where} mixes NNI v1 keys ({', '.join(v1)}) with v2 keys ({', '.join(v2)}). "
            "Use the v2 format only: see https://nni.readthedocs.io/en/stable/reference/experiment_config.html"
        )
    if v1:
        raise ConfigError(
            f"{where} is in NNI's v1 format (detected by {', '.join(v1)}). This plugin takes v2 configs: "
            "for example trial.command becomes trialCommand, trial.codeDir becomes trialCodeDirectory, "
            "maxTrialNum becomes maxTrialNumber, trainingServicePlatform becomes trainingService.platform."
        )


def _require_type(config: dict[str, Any], key: str, kinds: tuple[type, ...], where: str, what: str) -> None:
    value = config[key]
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise ConfigError(f"{where}: {key} must be {what}, not {value!r}.")


def _check_positive_int(config: dict[str, Any], key: str, where: str) -> None:
    if key in config and config[key] is not None:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: {key} must be a positive integer, not {value!r}.")


def _check_duration(config: dict[str, Any], key: str, where: str) -> None:
    if key in config and config[key] is not None:
        value = config[key]
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and value > 0 or isinstance(value, str) and _DURATION.match(value)):
            raise ConfigError(f"{where}: {key} must be a duration such as \"30s\", \"10m\" or \"1h\" (or seconds as a number), not {value!r}.")


def _resolve_dir(value: Any, base: Path, key: str, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key} must be a folder path, not {value!r}.")
    path = (base / value).resolve()
    if not path.is_dir():
        raise ConfigError(f"{where}: {key} {value!r} resolves to {path}, which is not a folder. Fix the path; relative paths resolve against {base}.")
    return path


def _load_search_space(value: Any, base: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: searchSpaceFile must be a file path, not {value!r}.")
    path = (base / value).resolve()
    if not path.is_file():
        raise ConfigError(f"{where}: searchSpaceFile {value!r} resolves to {path}, which does not exist. Fix the path; relative paths resolve against {base}.")
    text = path.read_text(encoding="utf-8")
    try:
        space = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"Search space file {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}") from error
    if not isinstance(space, dict):
        raise ConfigError(f"Search space file {path} must contain a mapping of parameter names to {{_type, _value}}.")
    return space


def _check_search_space(space: dict[str, Any], where: str) -> None:
    for name, spec in space.items():
        if not isinstance(spec, dict) or "_type" not in spec:
            raise ConfigError(f"{where}: search space entry {name!r} must be a mapping with _type and _value, not {spec!r}.")


def prepare_experiment(config: str | Path | dict[str, Any], base_dir: Path | None = None, platform: str = "local") -> PreparedExperiment:
    """Load and check an NNI v2 config for ``platform``; raise ``ConfigError`` naming the fix."""
    data, source, base = load_config(config, base_dir)
    where = _where(source)
    _check_format(data, where)

    unknown = sorted(k for k in data if k not in V2_KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown keys: {', '.join(unknown)}. Check their spelling against NNI's v2 config reference (keys are camelCase).")

    for key in ("trialCommand", "trialConcurrency"):
        if key not in data or data[key] in (None, ""):
            raise ConfigError(f"{where} is missing the required key {key}.")
    if not data.get("tuner") and not data.get("advisor"):
        # nnictl create rejects such a config with "ExperimentConfig: tuner must be set" (NNI 2.10 and 3.0).
        raise ConfigError(f"{where} is missing the required key tuner. Add one, such as tuner: {{name: Random}} "
                          "or tuner: {name: TPE, classArgs: {optimize_mode: maximize}}.")
    _require_type(data, "trialCommand", (str,), where, "a shell command as a string")
    _check_positive_int(data, "trialConcurrency", where)
    _check_positive_int(data, "maxTrialNumber", where)
    _check_duration(data, "maxExperimentDuration", where)
    _check_duration(data, "maxTrialDuration", where)

    service = data.get("trainingService")
    if service is None:
        service = {"platform": platform}
    if isinstance(service, list):
        raise ConfigError(f"{where}: trainingService lists several platforms (hybrid mode), which this plugin does not run. Use one of: {', '.join(SUPPORTED_PLATFORMS)}.")
    if not isinstance(service, dict) or "platform" not in service:
        raise ConfigError(f"{where}: trainingService must be a mapping with a platform key, such as {{platform: local}}.")
    configured = service["platform"]
    if configured not in KNOWN_PLATFORMS:
        raise ConfigError(f"{where}: trainingService.platform {configured!r} is not an NNI training platform. Use one of: {', '.join(SUPPORTED_PLATFORMS)}.")
    if configured not in SUPPORTED_PLATFORMS:
        raise ConfigError(f"{where}: trainingService.platform {configured!r} is not supported by pytest-nni-docker. Use one of: {', '.join(SUPPORTED_PLATFORMS)}.")
    if configured != platform:
        raise ConfigError(
            f"{where}: trainingService.platform is {configured!r} but the test runs in {platform!r} mode. "
            f"Set platform: {platform} in the config, or choose the mode with @pytest.mark.nni_docker(mode=\"{configured}\")."
        )
    data["trainingService"] = dict(service)

    if "searchSpace" in data and "searchSpaceFile" in data:
        raise ConfigError(f"{where} has both searchSpace and searchSpaceFile. Keep one of them.")
    if "searchSpaceFile" in data:
        search_space = _load_search_space(data.pop("searchSpaceFile"), base, where)
    elif "searchSpace" in data:
        search_space = data["searchSpace"]
        if not isinstance(search_space, dict):
            raise ConfigError(f"{where}: searchSpace must be a mapping of parameter names to {{_type, _value}}, not {search_space!r}.")
    else:
        raise ConfigError(f"{where} has neither searchSpace nor searchSpaceFile. Add the search space inline or as a file next to the config.")
    _check_search_space(search_space, where)
    data["searchSpace"] = search_space

    code_dir = _resolve_dir(data.get("trialCodeDirectory", "."), base, "trialCodeDirectory", where)
    uploads = {f"{CONTAINER_ROOT}/code": code_dir}
    data["trialCodeDirectory"] = f"{CONTAINER_ROOT}/code"

    for key in ("tuner", "assessor", "advisor"):
        section = data.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or not ({"name", "className"} & section.keys()):
            raise ConfigError(f"{where}: {key} must be a mapping with name (a built-in {key}) or className and codeDirectory, not {section!r}.")
        if "codeDirectory" in section:
            folder = _resolve_dir(section["codeDirectory"], base, f"{key}.codeDirectory", where)
            target = f"{CONTAINER_ROOT}/{key}"
            uploads[target] = folder
            data[key] = {**section, "codeDirectory": target}

    return PreparedExperiment(config=data, source=source, code_dir=code_dir, search_space=search_space, uploads=uploads)
