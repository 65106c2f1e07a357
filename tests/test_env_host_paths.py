"""env/host-paths: which directories env/run-in-env's rootfs mode bind-mounts so that paths the
user passes (--data-dir, --output-dir outside the clone, the working directory) mean the same
files inside the Debian 13 root filesystem as on the host."""

import os
import subprocess

from pipeline import configs

SCRIPT = os.path.join(configs.PROJECT_DIR, "env", "host-paths")


def host_paths(visible, workdir, *args):
    out = subprocess.run(["bash", SCRIPT, *visible, "--", workdir, *args],
                         check=True, capture_output=True, text=True).stdout
    return out.splitlines()


def test_directories_named_by_arguments_are_mounted(tmp_path):
    clone, data, outside = tmp_path / "clone", tmp_path / "elsewhere" / "asos", tmp_path / "runs"
    for d in (clone, data, outside):
        d.mkdir(parents=True)
    (data / "train.parquet").write_bytes(b"x")
    paths = host_paths([str(clone)], str(clone), "python", "local_runner.py",
                       "--data-dir", str(data),                      # an existing directory
                       f"--output-dir={outside}/new/out",            # not there yet: its parent
                       "--model-param", "epochs=3", "https://example.com/a/b")
    assert sorted(paths) == sorted([str(data), str(outside)])


def test_relative_paths_files_and_the_working_directory(tmp_path):
    clone, work = tmp_path / "clone", tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    clone.mkdir()
    (tmp_path / "config.json").write_text("{}")
    # the working directory itself; ../config.json is a file: its directory (tmp_path) holds
    # the working directory too, so one mount covers both
    assert host_paths([str(clone)], str(work), "x", "sub/y") == [str(work)]
    assert host_paths([str(clone)], str(work), "../config.json") == [str(tmp_path)]


def test_visible_and_system_directories_are_left_alone(tmp_path):
    clone = tmp_path / "clone"
    (clone / "outputs").mkdir(parents=True)
    paths = host_paths([str(clone), "/tmp"], str(clone), "--output-dir", str(clone / "outputs"),
                       "/usr/bin/python3", "/etc/ssl/certs/x.pem", "/tmp/somewhere/else",
                       "/v1/models/recommender:predict")  # nearest existing parent: "/"
    assert paths == []


def test_absolute_paths_inside_an_argument(tmp_path):
    clone, data = tmp_path / "clone", tmp_path / "shared" / "data"
    clone.mkdir()
    data.mkdir(parents=True)
    code = f"import os; os.makedirs('{data}/new', exist_ok=True); print(1/2)"
    assert host_paths([str(clone)], str(clone), "python", "-c", code) == [str(data)]
