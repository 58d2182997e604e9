"""SSH key folders of killed runs are removed by the next run, and live ones stay."""

import os
import subprocess
import sys

from pytest_nni_docker.ssh import KEY_FOLDER_PREFIX, Credentials, remove_stale_key_folders


def test_folder_of_dead_process_is_removed(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    stale = tmp_path / f"{KEY_FOLDER_PREFIX}{process.pid}-0-abc"
    stale.mkdir()
    (stale / "id_rsa").write_text("not a real key")

    removed = remove_stale_key_folders(str(tmp_path))

    assert removed == 1
    assert not stale.exists()


def test_folder_of_live_process_stays(tmp_path):
    credentials = Credentials.generate(parent=str(tmp_path))
    try:
        assert credentials.folder.name.startswith(f"{KEY_FOLDER_PREFIX}{os.getpid()}-")

        removed = remove_stale_key_folders(str(tmp_path))

        assert removed == 0
        assert credentials.key_file.exists()
    finally:
        credentials.remove()


def test_other_names_are_left_alone(tmp_path):
    other = tmp_path / f"{KEY_FOLDER_PREFIX}not-a-pid"
    other.mkdir()

    assert remove_stale_key_folders(str(tmp_path)) == 0
    assert other.exists()
