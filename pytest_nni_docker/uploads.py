"""The files copied into a manager container: caches and ``.nniignore`` matches stay behind.

NNI 3.0 reads ``.nniignore`` in the trial code folder with gitignore rules, through
the npm package ``ignore`` in ``nni_node/common/tarball.js``. This module follows
the same rules. Blank lines and lines starting with ``#`` are skipped, and ``!``
re-includes a path. A trailing ``/`` matches folders only. A pattern with a ``/``
at its start or in its middle is anchored at the folder root, and any other
pattern matches a name at any depth. ``*`` and ``?`` never match ``/``, but ``**``
matches across folders. The last matching line wins, and as in git, nothing inside
an ignored folder can be re-included.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pytest_nni_docker.errors import ConfigError

# Folders and files never copied into a container: caches and virtual environments.
UPLOAD_EXCLUDES = frozenset({"__pycache__", ".git", ".hg", ".tox", ".venv", "venv", ".pytest_cache", ".mypy_cache", "node_modules"})
# NNI 3.0 rejects trial code folders above this size (nni_node/common/tarball.js).
MAX_UPLOAD_BYTES = 300 * 1024 * 1024
IGNORE_FILE = ".nniignore"


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negated: bool
    folders_only: bool


def _class_end(glob: str, start: int) -> int:
    """Return the index of the ``]`` that closes the character class at ``start``, or -1."""
    i = start + 1
    if glob[i:i + 1] in ("!", "^"):
        i += 1
    if glob[i:i + 1] == "]":
        i += 1
    return glob.find("]", i)


def _translate(glob: str) -> str:
    """Return a regular expression for a gitignore glob without its anchoring slash."""
    parts: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            parts.append(".*")
            i += 2
        elif char == "*":
            parts.append("[^/]*")
            i += 1
        elif char == "?":
            parts.append("[^/]")
            i += 1
        elif char == "[" and _class_end(glob, i) > 0:
            end = _class_end(glob, i)
            content = glob[i + 1:end]
            if content[:1] in ("!", "^"):
                content = "^" + content[1:]
            parts.append("[" + content.replace("\\", "\\\\") + "]")
            i = end + 1
        elif char == "\\" and i + 1 < len(glob):
            parts.append(re.escape(glob[i + 1]))
            i += 2
        else:
            parts.append(re.escape(char))
            i += 1
    return "".join(parts)


class NniIgnore:
    """The patterns of one ``.nniignore`` file, matched against paths relative to its folder."""

    def __init__(self, lines: list[str]):
        self.rules: list[_Rule] = []
        for line in lines:
            rule = self._parse(line)
            if rule is not None:
                self.rules.append(rule)

    @classmethod
    def of_folder(cls, folder: Path) -> NniIgnore:
        path = folder / IGNORE_FILE
        if not path.is_file():
            return cls([])
        return cls(path.read_text(encoding="utf-8", errors="replace").splitlines())

    @staticmethod
    def _parse(line: str) -> _Rule | None:
        # Trailing spaces are dropped unless escaped with a backslash, as in git.
        pattern = line.rstrip("\n\r")
        while pattern.endswith(" ") and not pattern.endswith("\\ "):
            pattern = pattern[:-1]
        if not pattern or pattern.startswith("#"):
            return None
        negated = pattern.startswith("!")
        if negated:
            pattern = pattern[1:]
        elif pattern.startswith("\\!") or pattern.startswith("\\#"):
            pattern = pattern[1:]
        folders_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if not pattern:
            return None
        anchored = "/" in pattern
        body = _translate(pattern.lstrip("/"))
        prefix = "^" if anchored else "^(?:.*/)?"
        return _Rule(re.compile(prefix + body + "$", re.DOTALL), negated, folders_only)

    def ignores(self, relative: str, is_folder: bool) -> bool:
        """Return whether the path ``relative`` (with ``/`` separators) is ignored."""
        ignored = False
        for rule in self.rules:
            if rule.folders_only and not is_folder:
                continue
            if rule.regex.match(relative):
                ignored = not rule.negated
        return ignored


def upload_files(source: Path) -> list[tuple[Path, str]]:
    """List the folders and files of ``source`` that are copied, as ``(path, path relative to source)``.

    Folders come before their contents. Symbolic links are listed as they are and
    never followed.
    """
    # NOTE: only the .nniignore at the top of ``source`` is read. NNI 2.x
    # (training_service/common/util.js) also reads .nniignore files in subfolders.
    ignore = NniIgnore.of_folder(source)
    listed: list[tuple[Path, str]] = []
    for folder, subfolders, files in os.walk(source):
        base = Path(folder).relative_to(source).as_posix()
        prefix = "" if base == "." else base + "/"
        copied_folders = []
        for name in sorted(subfolders):
            relative = prefix + name
            path = Path(folder) / name
            if name in UPLOAD_EXCLUDES or ignore.ignores(relative, is_folder=not path.is_symlink()):
                continue
            listed.append((path, relative))
            copied_folders.append(name)
        # os.walk descends only into the folders left in the list, and does not follow links.
        subfolders[:] = [name for name in copied_folders if not (Path(folder) / name).is_symlink()]
        for name in sorted(files):
            relative = prefix + name
            if name.endswith(".pyc") or name in UPLOAD_EXCLUDES or ignore.ignores(relative, is_folder=False):
                continue
            listed.append((Path(folder) / name, relative))
    return listed


def upload_size(source: Path) -> int:
    """Return the bytes of the regular files that ``upload_files`` lists for ``source``."""
    return sum(path.lstat().st_size for path, _ in upload_files(source) if path.is_file() and not path.is_symlink())


def check_upload_sizes(folders: dict[str, Path], where: str) -> None:
    """Raise ``ConfigError`` when a folder to copy is above NNI's limit for trial code."""
    for source in folders.values():
        size = upload_size(source)
        if size > MAX_UPLOAD_BYTES:
            raise ConfigError(
                f"{where}: the folder {source} contains {size / 2**20:.1f} MB of files to copy, above NNI's limit of "
                f"{MAX_UPLOAD_BYTES // 2**20} MB for trial code. Move data sets out of the folder, or list them "
                f"in {source / IGNORE_FILE} (gitignore patterns such as data/ or *.bin)."
            )
