"""The output directory's run lock: a second run refuses (or waits) while the first holds it, and
the lock goes with the process that held it."""

import subprocess
import sys
import textwrap

import pytest

from runner import run_lock

HOLD_IN_CHILD = textwrap.dedent("""
    import sys
    from runner import run_lock
    with run_lock.hold(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.readline()  # until told to finish (or killed)
        open(sys.argv[1] + "/first-run-done", "w").close()  # the last thing before releasing
""")


def _child_holding(output_dir):
    child = subprocess.Popen([sys.executable, "-c", HOLD_IN_CHILD, str(output_dir)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_run_refuses_naming_the_holder(tmp_path):
    child = _child_holding(tmp_path)
    try:
        with pytest.raises(run_lock.OutputDirBusy) as busy:
            with run_lock.hold(str(tmp_path)):
                pass
        message = str(busy.value)
        assert f"pid {child.pid}" in message and str(tmp_path) in message
        assert "--output-dir" in message
    finally:
        child.kill()
        child.wait()
    with run_lock.hold(str(tmp_path)):  # the holder is gone (killed): the lock went with it
        pass


def test_a_busy_output_directory_is_said_without_taking_or_creating_anything(tmp_path):
    run_lock.refuse_if_busy(str(tmp_path / "new"))  # nothing there: not busy, nothing made
    assert not (tmp_path / "new").exists()
    child = _child_holding(tmp_path)
    try:
        with pytest.raises(run_lock.OutputDirBusy, match=f"another run is using {tmp_path} \\(pid {child.pid}"):
            run_lock.refuse_if_busy(str(tmp_path))
    finally:
        child.kill()
        child.wait()
    run_lock.refuse_if_busy(str(tmp_path))  # released
    with run_lock.hold(str(tmp_path)):  # and the probe took nothing
        pass


def test_outputs_left_without_their_metadata_store_are_named(tmp_path):
    store, root = str(tmp_path / "metadata" / "m.db"), tmp_path / "pipeline_root"
    assert run_lock.orphaned_outputs(store, str(root)) is None  # a first run
    (root / "drift_acceptances").mkdir(parents=True)
    assert run_lock.orphaned_outputs(store, str(root), kept=["drift_acceptances"]) is None
    for name in ("Trainer", "Transform", "Evaluator", "Pusher"):
        (root / name).mkdir()
    said = run_lock.orphaned_outputs(store, str(root), kept=["drift_acceptances"])
    assert said.startswith(f"the ML Metadata store {store} is missing, but {root} holds the outputs of earlier "
                           "runs (Evaluator, Pusher, Trainer, ...): this run would write over them"), said
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "m.db").write_bytes(b"")
    assert run_lock.orphaned_outputs(store, str(root)) is None  # the store is there: TFX goes on as ever


def test_a_second_run_can_wait_for_the_first(tmp_path):
    child = _child_holding(tmp_path)
    waited_for = []

    def waiting(holder):  # the first run finishes only once the second is waiting for it
        waited_for.append(holder)
        child.stdin.write("finish\n")
        child.stdin.flush()

    with run_lock.hold(str(tmp_path), wait_seconds=60, poll_seconds=0.1, on_wait=waiting):
        # got the lock only once the first run had finished its work and released it
        assert (tmp_path / "first-run-done").exists()
    assert len(waited_for) == 1 and f"pid {child.pid}" in waited_for[0]  # said once, naming the holder
    child.wait()


def test_one_process_does_not_block_another_directory(tmp_path):
    child = _child_holding(tmp_path / "a")
    try:
        with run_lock.hold(str(tmp_path / "b")):
            pass
    finally:
        child.kill()
        child.wait()


def test_check_writable_creates_the_directory_and_leaves_nothing(tmp_path):
    out = tmp_path / "new" / "out"
    run_lock.check_writable(str(out))
    assert out.is_dir() and not list(out.iterdir())
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        run_lock.check_writable(str(tmp_path / "file" / "out"))


def test_unwritable_says_why_without_creating_anything(tmp_path):
    (tmp_path / "file").write_text("")
    assert run_lock.unwritable(str(tmp_path / "new" / "out")) is None
    assert not (tmp_path / "new").exists()
    assert run_lock.unwritable(str(tmp_path / "file")) == f"{tmp_path / 'file'} is a file, not a directory"
    assert run_lock.unwritable(str(tmp_path / "file" / "out")) == f"{tmp_path / 'file'} is a file, not a directory"
