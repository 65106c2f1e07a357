"""env/host-paths: which directories env/run-in-env's rootfs mode bind-mounts so that paths the
user passes (--data-dir, --output-dir outside the clone, the working directory) mean the same
files inside the Debian 13 root filesystem as on the host; env/bind-into: that a filesystem
mounted below such a directory is the one written inside."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

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


def test_a_symlinked_data_dir_in_the_clone_is_followed(tmp_path):
    """Found by exploratory testing: a clone whose data/asos links to /srv/spans saw a dangling
    link inside the rootfs (its target was never bound), and default_data_dir() fell back to
    ../shared's copy: a run on other data than the user put there."""
    clone, spans, disk = tmp_path / "clone", tmp_path / "srv" / "spans", tmp_path / "big" / "outputs"
    for d in (clone / "data", clone / "schema", spans, disk):
        d.mkdir(parents=True)
    (clone / "data" / "asos").symlink_to(spans)
    (clone / "outputs").symlink_to(os.path.relpath(disk, clone))  # a relative link
    (clone / "latest").symlink_to("schema")  # inside the clone: nothing to add
    (clone / "data" / "python").symlink_to("/usr/bin/python3")  # a system path: never bound
    os.makedirs(clone / ".git" / "refs")
    (clone / ".git" / "refs" / "x").symlink_to(tmp_path / "ignored")
    assert sorted(host_paths(["--follow-links", str(clone)], str(clone), "python", "local_runner.py")) == \
        sorted([str(spans), str(disk)])
    # ../shared (or the clone) may itself be a link: its links are looked for all the same
    (tmp_path / "shared").symlink_to(clone)
    assert sorted(host_paths(["--follow-links", str(tmp_path / "shared"), str(clone)], str(clone))) == \
        sorted([str(spans), str(disk)])
    # links of a directory that is only visible (/tmp) are not looked for
    assert host_paths([str(clone)], str(clone), "python", "local_runner.py") == []


def test_a_symlink_named_on_the_command_line_is_followed(tmp_path):
    visible, spans = tmp_path / "visible", tmp_path / "srv" / "spans"
    visible.mkdir()
    spans.mkdir(parents=True)
    (visible / "link").symlink_to(spans)
    (tmp_path / "srv" / "link").symlink_to("spans")
    # a link under a visible directory (/tmp/link): its target
    assert host_paths([str(visible)], str(visible), "--data-dir", str(visible / "link")) == [str(spans)]
    assert host_paths([str(visible)], str(visible), "--data-dir=link/") == [str(spans)]
    # a link outside: bound as named (mount follows it) and its target too, so the link resolves
    assert sorted(host_paths([str(visible)], str(visible), "--data-dir", str(tmp_path / "srv" / "link"))) == \
        sorted([str(tmp_path / "srv" / "link"), str(spans)])
    # a path through a linked directory, and a broken link: the target's nearest existing parent
    (visible / "gone").symlink_to(tmp_path / "elsewhere" / "missing")
    (tmp_path / "elsewhere").mkdir()
    assert sorted(host_paths([str(visible)], str(visible), str(visible / "link" / "sub"), str(visible / "gone"))) == \
        sorted([str(spans), str(tmp_path / "elsewhere")])


def test_the_paths_in_a_pipeline_json_or_yaml_named_on_the_command_line(tmp_path):
    """Found by exploratory testing: `env/run-in-env python -m kubeflow_v2.harness pipeline.json`
    with a data root outside the clone, ../shared and /tmp failed in ExampleGen with 'no train
    file ... and no span folder in <data root>', a folder that exists on the host: the rootfs saw
    only the JSON's folder, not the paths compiled into it."""
    clone, work = tmp_path / "clone", tmp_path / "work"
    data, runs = tmp_path / "srv" / "spans", tmp_path / "runs"
    for d in (clone / "schema", work, data, runs):
        d.mkdir(parents=True)
    (tmp_path / "srv" / "current").symlink_to("spans")
    # as kubeflow_v2_runner.py writes them: constants, and JSON inside a JSON string
    custom = json.dumps({"serving_model_dir": f"{runs}/serving", "patterns": [f"{data}/dsf_*.parquet"]})
    job = {"pipelineSpec": {"root": {"dag": {"tasks": {}}}, "x": {
        "input_base": {"runtimeValue": {"constantValue": {"stringValue": str(tmp_path / "srv" / "current")}}},
        "custom_config": {"runtimeValue": {"constantValue": {"stringValue": custom}}},
        "schema": f"{clone}/schema", "bucket": "gs://b/root", "image": "europe-docker.pkg.dev/p/r/i:1",
        "boot": "/opt/apache/beam/boot"}},
        "runtimeConfig": {"gcsOutputDirectory": f"{runs}/new/pipeline_root"}}
    (work / "pipeline.json").write_text(json.dumps(job))
    expected = [str(tmp_path / "srv" / "current"), str(data), str(runs)]  # the link, its target, the roots' parent
    paths = host_paths([str(clone)], str(work), "python", "-m", "kubeflow_v2.harness", "pipeline.json",
                       "--log-dir", str(work / "logs"))
    assert sorted(paths) == sorted([str(work), *expected])
    # a KFP package (YAML), named by an absolute path
    (tmp_path / "kfp.yaml").write_text(f"defaultPipelineRoot: {runs}/root\n"
                                       f"deploymentSpec:\n  args:\n  - --input_base\n  - '{data}'\n")
    assert sorted(host_paths([str(clone)], str(clone), str(tmp_path / "kfp.yaml"))) == [str(tmp_path)]
    (tmp_path / "kfp.yaml").rename(work / "kfp.yaml")
    assert sorted(host_paths([str(clone)], str(clone), str(work / "kfp.yaml"))) == \
        sorted([str(work), str(data), str(runs)])


# --- env/bind-into: what a command inside the rootfs sees below a bound folder ------------------
BIND_INTO = os.path.join(configs.PROJECT_DIR, "env", "bind-into")
# Run in a private mount namespace (mounts vanish with it): a minimal root (the current /usr),
# a tmpfs below a folder under /tmp and one below an --output-dir's parent outside /tmp; the
# folders env/host-paths names are bound as env/run-in-env binds them; python writes a file on
# each tmpfs from inside the chroot; then, outside it: the file's device and the tmpfs's, and
# what is left underneath once the tmpfs is unmounted.
SCENARIO = r"""
set -euo pipefail
root=$1 under_tmp=$2 runs=$3 project=$4; shift 4
mkdir -p "$root/etc" "$under_tmp/disk" "$runs/disk"
mount -t tmpfs -o size=4m tmpfs "$under_tmp/disk"
mount -t tmpfs -o size=4m tmpfs "$runs/disk"
for d in bin sbin lib lib64; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d"
  elif [ -d "/$d" ]; then "$project/env/bind-into" "$root" "/$d"; fi
done
"$project/env/bind-into" "$root" /usr
mapfile -t dirs < <("$project/env/host-paths" "$project" /tmp -- "$project" "$@")
echo "bound /tmp ${dirs[*]}"
"$project/env/bind-into" "$root" /tmp "${dirs[@]}"
chroot "$root" "$@"
for f in "$under_tmp/disk" "$runs/disk"; do
  echo "device $f/written $(stat -c %d "$f/written" 2>/dev/null || echo missing) tmpfs $(stat -c %d "$f")"
  umount "$f"
  echo "underneath $f: $(ls -A "$f" | tr '\n' ' ')"
done
"""


def _private_namespace():
    """unshare's arguments for a private mount namespace, or None (with why) when this process
    cannot make one: not root, no unshare, or a namespace whose mounts could leak to the host."""
    if os.geteuid() != 0:
        return None, "needs root (mount namespaces, tmpfs, chroot), as env/run-in-env's rootfs mode"
    if not shutil.which("unshare") or not os.path.exists("/usr/sbin/chroot"):
        return None, "needs unshare and chroot (util-linux, coreutils)"
    private = ["unshare", "--mount", "--propagation", "private"]
    if subprocess.run([*private, "true"], capture_output=True).returncode == 0:
        return private, ""
    # Inside env/run-in-env's chroot '/' is no mount point, so unshare cannot make it private;
    # that namespace is private already (no shared mounts): a copy of it is safe.
    with open("/proc/self/mountinfo") as f:
        if " shared:" in f.read():
            return None, "unshare cannot make a private mount namespace here, and this one shares mounts"
    unchanged = ["unshare", "--mount", "--propagation", "unchanged"]
    if subprocess.run([*unchanged, "true"], capture_output=True).returncode != 0:
        return None, "unshare --mount is not permitted here"
    return unchanged, ""


def test_a_filesystem_mounted_below_a_bound_folder_gets_the_files_written_inside(tmp_path):
    """issue 19: a tmpfs mounted below a folder the rootfs binds (under /tmp, and under an
    --output-dir's parent outside /tmp) stayed empty: the files went to the disk underneath."""
    unshare, why = _private_namespace()
    if unshare is None:
        pytest.skip(f"a mount-namespace test: {why}")
    # the interpreter behind this one (a venv's python links to it): the minimal root binds /usr
    # only, and a minimal Debian has python3.13 without the python3 link
    python = os.path.realpath(sys.executable)
    if not python.startswith("/usr/"):
        pytest.skip(f"needs a Python under /usr for the minimal root, not {python}")
    under_tmp = tmp_path / "outer"
    outside = tempfile.mkdtemp(prefix="recsys-bind-test-", dir="/var/tmp")
    runs = os.path.join(outside, "runs")
    code = ("import sys; out = sys.argv[1].split('=', 1)[1]; "
            f"open('{under_tmp}/disk/written', 'w').write('x'); "
            "open(out.rsplit('/', 1)[0] + '/disk/written', 'w').write('y')")
    try:
        result = subprocess.run(
            [*unshare, "bash", "-c", SCENARIO, "_", str(tmp_path / "root"), str(under_tmp), runs,
             configs.PROJECT_DIR, python, "-c", code, f"--output-dir={runs}/new"],
            capture_output=True, text=True, env={**os.environ, "PATH": os.environ["PATH"] + ":/usr/sbin:/sbin"})
    finally:
        shutil.rmtree(outside, ignore_errors=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"bound /tmp {runs}"  # the --output-dir's parent, not its tmpfs
    for disk in (f"{under_tmp}/disk", f"{runs}/disk"):
        [device] = [line.split() for line in lines if line.startswith(f"device {disk}/")]
        assert device[2] == device[4], f"{disk}/written is not on the tmpfs mounted at {disk}: {lines}"
        assert f"underneath {disk}: " in lines  # nothing went to the disk below the tmpfs


def test_run_in_env_follows_the_links_at_the_top_of_the_clone_and_shared():
    """env/run-in-env cannot run inside its own rootfs (where the tests run): its call of
    env/host-paths, read from the script, follows the clone's and ../shared's links."""
    with open(os.path.join(configs.PROJECT_DIR, "env", "run-in-env")) as f:
        script = f.read()
    call = script[script.index('"$PROJECT_DIR/env/host-paths"'):]
    call = call[:call.index('"$@")')]
    assert '--follow-links "$PROJECT_DIR" --follow-links "$shared_dir"' in call and "/tmp --" in call
