"""Loading and checking NNI v2 experiment configs before any container starts.

Relative ``trialCodeDirectory``, ``searchSpaceFile`` and tuner ``codeDirectory``
paths resolve against the config file's folder, as ``nnictl`` does.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_nni_docker.errors import ConfigError
from pytest_nni_docker.uploads import check_upload_sizes

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
# Search space types that NNI 3.0 validates (nni/common/hpo_utils/validation.py).
SEARCH_SPACE_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform",
                      "normal", "qnormal", "lognormal", "qlognormal")
# Keys of tuner, assessor and advisor (_AlgorithmConfig in nni/experiment/config/algorithm.py).
ALGORITHM_KEYS = ("name", "className", "codeDirectory", "classArgs")
# Keys of trainingService by platform, from LocalConfig and RemoteConfig in NNI 3.0
# (nni/experiment/config/training_services/), plus the TrainingServiceConfig shortcuts
# trialCommand, trialGpuNumber and debug that NNI also takes at the top level.
TRAINING_SERVICE_KEYS = {
    "local": ("platform", "useActiveGpu", "maxTrialNumberPerGpu", "gpuIndices", "reuseMode",
              "trialCommand", "trialGpuNumber", "debug"),
    "remote": ("platform", "machineList", "reuseMode", "trialCommand", "trialGpuNumber", "debug"),
}
SUPPORTED_PLATFORMS = ("local", "remote")
KNOWN_PLATFORMS = frozenset({
    "local", "remote", "openpai", "aml", "kubeflow", "frameworkcontroller", "adl", "dlc", "hybrid",
})
_DURATION = re.compile(r"^\s*\d+(\.\d+)?\s*(s|m|h|d)\s*$")

# The folder in the manager container that the plugin copies trial code and the config into.
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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_parameter(name: str, spec: Any, where: str) -> None:
    """Check one search space entry as NNI 3.0's ``validate_search_space`` does, and nested choices."""
    if not isinstance(spec, dict) or "_type" not in spec:
        raise ConfigError(f"{where}: search space entry {name!r} must be a mapping with _type and _value, not {spec!r}.")
    kind = spec["_type"]
    if kind not in SEARCH_SPACE_TYPES:
        close = difflib.get_close_matches(str(kind), SEARCH_SPACE_TYPES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}: search space entry {name!r} has the unknown _type {kind!r}.{hint} "
                          f"Known types: {', '.join(SEARCH_SPACE_TYPES)}.")
    if "_value" not in spec:
        raise ConfigError(f"{where}: search space entry {name!r} ({kind}) is missing _value.")
    values = spec["_value"]
    if not isinstance(values, list):
        raise ConfigError(f"{where}: search space entry {name!r} ({kind}) must have a list as _value, not {values!r}.")

    if kind == "choice":
        if not values:
            raise ConfigError(f"{where}: search space entry {name!r} (choice) has an empty _value. List at least one option.")
        # A nested choice is a list of mappings with _name, whose other entries may be parameters.
        for option in values:
            if not isinstance(option, dict):
                continue
            label = option.get("_name", "?")
            for key, nested in option.items():
                if isinstance(nested, dict) and "_type" in nested:
                    _check_parameter(f"{name}/{label}/{key}", nested, where)
        return

    count = 3 if kind.startswith("q") else 2
    shape = {"randint": "[low, high]", "normal": "[mu, sigma]", "lognormal": "[mu, sigma]", "qnormal": "[mu, sigma, q]",
             "qlognormal": "[mu, sigma, q]", "quniform": "[low, high, q]", "qloguniform": "[low, high, q]"}.get(kind, "[low, high]")
    if len(values) != count or not all(_is_number(value) for value in values):
        raise ConfigError(f"{where}: search space entry {name!r} ({kind}) must have _value {shape} with {count} numbers, "
                          f"not {values!r}.")
    if kind == "randint" and not all(isinstance(value, int) for value in values):
        raise ConfigError(f"{where}: search space entry {name!r} (randint) must have integer bounds, not {values!r}.")
    if "normal" in kind:
        if values[1] <= 0:
            raise ConfigError(f"{where}: search space entry {name!r} ({kind}) must have sigma > 0, not {values[1]!r}.")
    else:
        if values[0] >= values[1]:
            raise ConfigError(f"{where}: search space entry {name!r} ({kind}) must have low < high, not {values!r}.")
        if "log" in kind and values[0] <= 0:
            raise ConfigError(f"{where}: search space entry {name!r} ({kind}) must have low > 0 for a log scale, "
                              f"not {values[0]!r}.")
    if count == 3 and values[2] <= 0:
        raise ConfigError(f"{where}: search space entry {name!r} ({kind}) must have q > 0, not {values[2]!r}.")


def _check_search_space(space: dict[str, Any], where: str) -> None:
    for name, spec in space.items():
        _check_parameter(str(name), spec, where)


def _check_keys(section: dict[str, Any], known: tuple[str, ...], where: str, what: str) -> None:
    for key in section:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{where}: {what} has the unknown key {key}.{hint} Known keys: {', '.join(known)}.")


def _check_training_service(service: dict[str, Any], where: str) -> None:
    platform = service["platform"]
    for key in ("trialCodeDirectory", "nniManagerIp"):
        if key in service:
            raise ConfigError(f"{where}: trainingService.{key} is not supported by pytest-nni-docker, "
                              f"which rewrites this value for the container. Set {key} at the top level of the config.")
    if platform == "remote":
        for key in ("useActiveGpu", "maxTrialNumberPerGpu", "gpuIndices"):
            if key in service:
                raise ConfigError(f"{where}: trainingService.{key} is not a key of NNI's remote training service "
                                  "(RemoteConfig in NNI 2.10 and 3.0), where it belongs to each machineList entry. "
                                  "pytest-nni-docker replaces machineList with its workers, so remove the key.")
    _check_keys(service, TRAINING_SERVICE_KEYS[platform], where, "trainingService")

    if "useActiveGpu" in service and service["useActiveGpu"] is not None and not isinstance(service["useActiveGpu"], bool):
        raise ConfigError(f"{where}: trainingService.useActiveGpu must be true or false, not {service['useActiveGpu']!r}.")
    if "reuseMode" in service and not isinstance(service["reuseMode"], bool):
        raise ConfigError(f"{where}: trainingService.reuseMode must be true or false, not {service['reuseMode']!r}.")
    per_gpu = service.get("maxTrialNumberPerGpu")
    if per_gpu is not None and (isinstance(per_gpu, bool) or not isinstance(per_gpu, int) or per_gpu < 1):
        raise ConfigError(f"{where}: trainingService.maxTrialNumberPerGpu must be a positive integer, not {per_gpu!r}.")


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
    _check_positive_int(data, "maxTrialNumberPerGpu", where)

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
    _check_training_service(service, where)
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
        _check_keys(section, ALGORITHM_KEYS, where, key)
        if section.get("classArgs") is not None and not isinstance(section["classArgs"], dict):
            raise ConfigError(f"{where}: {key}.classArgs must be a mapping of argument names to values, not {section['classArgs']!r}.")
        if "codeDirectory" in section:
            folder = _resolve_dir(section["codeDirectory"], base, f"{key}.codeDirectory", where)
            target = f"{CONTAINER_ROOT}/{key}"
            uploads[target] = folder
            data[key] = {**section, "codeDirectory": target}

    check_upload_sizes(uploads, where)
    return PreparedExperiment(config=data, source=source, code_dir=code_dir, search_space=search_space, uploads=uploads)
