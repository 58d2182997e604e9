"""What is copied into the manager container: .nniignore matching, and a real run with an ignored big file."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from pytest_nni_docker.containers import _archive_folders
from pytest_nni_docker.uploads import NniIgnore, upload_files, upload_size

# (pattern lines, path, is a folder, ignored)
MATCH_CASES = [
    (["*.bin"], "big.bin", False, True),
    (["*.bin"], "data/deep/big.bin", False, True),
    (["*.bin"], "big.binx", False, False),
    (["/big.bin"], "big.bin", False, True),
    (["/big.bin"], "data/big.bin", False, False),
    (["data/"], "data", True, True),
    (["data/"], "sub/data", True, True),
    (["data/"], "data", False, False),
    (["data/raw"], "data/raw", True, True),
    (["data/raw"], "other/data/raw", True, False),
    (["ckpt?.pt"], "ckpt1.pt", False, True),
    (["ckpt?.pt"], "ckpt10.pt", False, False),
    (["logs/*"], "logs/a.txt", False, True),
    (["logs/*"], "logs/sub/a.txt", False, False),
    (["**/cache"], "cache", True, True),
    (["**/cache"], "a/b/cache", True, True),
    (["a/**/b.txt"], "a/b.txt", False, True),
    (["a/**/b.txt"], "a/x/y/b.txt", False, True),
    (["a/**/b.txt"], "c/a/x/b.txt", False, False),
    (["out/**"], "out/x/y.txt", False, True),
    (["model[0-9].pt"], "model3.pt", False, True),
    (["model[!0-9].pt"], "model3.pt", False, False),
    (["*.csv", "!keep.csv"], "keep.csv", False, False),
    (["*.csv", "!keep.csv"], "drop.csv", False, True),
    (["# *.py", "", "   "], "trial.py", False, False),
    (["\\#name"], "#name", False, True),
    (["*.bin   "], "big.bin", False, True),
]


@pytest.mark.parametrize(("lines", "path", "is_folder", "ignored"), MATCH_CASES,
                         ids=[f"{'|'.join(case[0])}~{case[1]}" for case in MATCH_CASES])
def test_nniignore_matching(lines, path, is_folder, ignored):
    assert NniIgnore(lines).ignores(path, is_folder) is ignored


def test_upload_files_skip_ignored(tmp_path):
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "x.npy").write_bytes(b"0" * 1000)
    (tmp_path / "data" / "labels.csv").write_text("a,b\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "t.cpython-311.pyc").write_bytes(b"0")
    (tmp_path / "weights.bin").write_bytes(b"0" * 5000)
    (tmp_path / "trial.py").write_text("print(1)\n")
    (tmp_path / ".nniignore").write_text("# data and weights stay on the host\ndata/raw/\n*.bin\n")

    listed = [relative for _, relative in upload_files(tmp_path)]

    assert listed == ["data", ".nniignore", "trial.py", "data/labels.csv"]
    assert upload_size(tmp_path) == sum((tmp_path / name).stat().st_size for name in (".nniignore", "trial.py", "data/labels.csv"))


def test_archive_skips_ignored(tmp_path):
    (tmp_path / "trial.py").write_text("print(1)\n")
    (tmp_path / "big.bin").write_bytes(b"0" * 100)
    (tmp_path / ".nniignore").write_text("big.bin\n")
    buffer = io.BytesIO()

    _archive_folders({"/nni/code": tmp_path}, buffer)

    with tarfile.open(fileobj=buffer) as archive:
        names = archive.getnames()
    assert names == ["nni/code", "nni/code/.nniignore", "nni/code/trial.py"]


# Reports 1.0 when the ignored file is absent from the copied trial code folder and
# the file next to it is present.
_TRIAL = """\
from pathlib import Path

import nni

nni.get_next_parameter()
folder = Path(__file__).resolve().parent
print("trial code folder:", sorted(p.name for p in folder.iterdir()))
nni.report_final_result(float(not (folder / "data" / "big.bin").exists() and (folder / "data" / "small.txt").exists()))
"""


@pytest.mark.nni_docker(timeout=300)
def test_ignored_big_file_not_uploaded(nni_experiment, tmp_path):
    """A 301 MB file listed in .nniignore is neither counted against NNI's limit nor copied."""
    code = tmp_path / "code"
    (code / "data").mkdir(parents=True)
    (code / "trial.py").write_text(_TRIAL)
    (code / "data" / "small.txt").write_text("kept\n")
    with open(code / "data" / "big.bin", "wb") as handle:
        handle.truncate(301 * 2**20)  # sparse, so it costs no disk space
    (code / ".nniignore").write_text("/data/*.bin\n")
    config = {"trialCommand": "python3 trial.py", "trialCodeDirectory": "code", "trialConcurrency": 2,
              "maxTrialNumber": 2, "searchSpace": {"x": {"_type": "choice", "_value": [1, 2]}},
              "tuner": {"name": "Random"}}

    result = nni_experiment.run(config, base_dir=tmp_path)

    assert result.status == "DONE"
    assert len(result.succeeded) == 2
    assert [trial.final_metric for trial in result.trials] == [1.0, 1.0], [trial.stdout for trial in result.trials]
