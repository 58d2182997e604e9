"""NNI x Python cells as pytest parameters, and selecting cells with ``--nni-cells``.

``cells()`` returns one ``pytest.param`` per supported cell for
``@pytest.mark.parametrize``. Each carries ``@pytest.mark.nni_docker`` with the
cell's NNI and Python version and has the cell's name as its test id::

    @pytest.mark.parametrize("cell", pytest_nni_docker.cells())
    def test_tuning(nni_experiment, cell):
        result = nni_experiment.run("config.yml")   # runs on cell.nni_version, cell.python

``--nni-cells nni3.0-py3.11,nni2.10.1-py3.9`` deselects the other cells' tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_nni_docker import versions
from pytest_nni_docker.errors import ConfigError

CELL_MARKER = "nni_cell"
ALL_CELLS = "all"


def cells(*names: str, nni_versions: Iterable[str] | None = None, pythons: Iterable[str] | None = None,
          **settings: Any) -> list[Any]:
    """Return ``pytest.param(cell, ...)`` for each supported cell, to pass to ``@pytest.mark.parametrize``.

    ``names`` ("nni3.0-py3.9") pick cells by name; ``nni_versions`` and ``pythons``
    filter them. ``settings`` are more ``nni_docker`` marker arguments for every
    cell, such as ``timeout=300``. Raises ``ConfigError`` when nothing matches.
    """
    import pytest

    chosen = [versions.cell_by_name(name) for name in names] if names else list(versions.SUPPORTED_CELLS)
    if nni_versions is not None:
        wanted = {versions.release(v).version for v in nni_versions}
        chosen = [cell for cell in chosen if cell.nni_version in wanted]
    if pythons is not None:
        wanted_pythons = {str(p) for p in pythons}
        chosen = [cell for cell in chosen if cell.python in wanted_pythons]
    if not chosen:
        known = ", ".join(cell.name for cell in versions.SUPPORTED_CELLS)
        raise ConfigError(f"No supported NNI cell matches names={names!r}, nni_versions={nni_versions!r}, "
                          f"pythons={pythons!r}. Known cells: {known}.")

    return [
        pytest.param(
            cell,
            marks=[
                pytest.mark.nni_docker(nni_version=cell.nni_version, python=cell.python, **settings),
                getattr(pytest.mark, CELL_MARKER)(cell.name),
            ],
            id=cell.name,
        )
        for cell in chosen
    ]


def parse_selection(text: str) -> frozenset[str] | None:
    """Return the cell names in ``--nni-cells`` text, or None for all cells. Raises ``ConfigError`` on unknown names."""
    names = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
    if not names or names == [ALL_CELLS]:
        return None
    return frozenset(versions.cell_by_name(name).name for name in names)


def deselect(items: list[Any], selection: frozenset[str] | None) -> tuple[list[Any], list[Any]]:
    """Split ``items`` into (kept, deselected): tests of cells outside ``selection`` are deselected.

    Only tests parametrized with ``cells()`` have a cell; all other tests are kept.
    """
    if selection is None:
        return items, []
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker(CELL_MARKER)
        if marker is not None and marker.args and marker.args[0] not in selection:
            dropped.append(item)
        else:
            kept.append(item)
    return kept, dropped
