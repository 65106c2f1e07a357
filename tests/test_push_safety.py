"""End to end on generated data, through local_runner.main: a disk that fills during the push.

The serving directory is a small tmpfs (mounted by the test: root only, else skipped). A first
run pushes a version; a second run trains another model on a disk too small for it: the Pusher
fails, nothing is left under a version number, and the run says so in one line with its exit
code; a third run with room, everything else from the cache, pushes the model complete. That
was the issue's poisoned state: a broken version directory that every later run took for the
served model."""

import io
import os

import pytest

import local_runner
from components import model_card, model_versions
from runner import console
from runner import versions as history
from runner import testing as disks
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e
SMALL = ["--model-param", "embedding_dim=8", "--model-param", "epochs=3", "--model-param", "batch_size=64",
         "--model-param", "learning_rate=0.05", "--gate-bound", "recall_at_10=0.3",
         "--gate-bound", "sampled_accuracy=0"]
ROOMY = 256 * 1024 * 1024


def _run(root, *extra):
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", str(root / "data"), "--output-dir", str(root / "out"),
                              "--skip-checksums", *SMALL, *extra], stream=stream)
    return code, stream.getvalue()


def _used(path):
    stats = os.statvfs(path)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def test_a_push_cut_short_by_a_full_disk_leaves_no_version_and_the_next_run_pushes(tmp_path):
    fake_asos.write_fake_asos(str(tmp_path / "data"), tastes=4)  # a model can beat popularity (the gate's rule)
    disk = str(tmp_path / "out" / "serving_model")
    base = os.path.join(disk, "recommender")
    with disks.mounted(disk, ROOMY):
        code, text = _run(tmp_path)
        assert code == console.EXIT_OK, text
        [first] = model_versions.versions(base)
        assert first.complete and model_card.read(first.path) is not None
        model_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(first.path) for f in fs)

        # another model; room for half of it
        disks.resize(disk, _used(disk) + model_bytes // 2)
        code, text = _run(tmp_path, "--model-param", "epochs=4")
        assert code == console.EXIT_NO_SPACE, text
        lines = text.splitlines()
        [at] = [i for i, line in enumerate(lines) if line.startswith("error:")]
        # the error and the lines it goes on on (the console's 100 columns: runner/console.py
        # fit_text), its words joined
        more = next((i for i in range(at + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
        line = " ".join(" ".join(lines[at:more]).split())
        assert line.startswith(f"error: no space left on device at Pusher (exit code {console.EXIT_NO_SPACE}): "
                               f"the model could not be pushed to {base}: ")
        assert "No space left on device; no version was published" in line
        assert os.listdir(base) == [str(first.number)]  # no half version, no temporary copy

        disks.resize(disk, ROOMY)
        code, text = _run(tmp_path, "--model-param", "epochs=4")
        assert code == console.EXIT_OK, text
        assert "this model is already served" not in text
        states = helpers.executions(helpers.test_config(str(tmp_path / "data"), str(tmp_path / "out")))
        assert states["Trainer"][-1] == "CACHED" and states["Pusher"][-2:] == ["FAILED", "COMPLETE"]
        second, _ = model_versions.versions(base)
        assert second.complete and second.number > first.number
        card = model_card.read(second.path)
        assert card["model_details"]["version"]["served_before"] == first.number
        assert card["quantitative_analysis"]["gate"]["blessed"]
        assert [f["sha256"] for f in card["model_parameters"]["data"][0]["files"]]
        listed = history.history_text(base).splitlines()
        assert listed[2].startswith(f"* {second.number}") and listed[3].startswith(f"  {first.number}")
        assert "span" not in listed[2]  # flat data: TFX's span 0, not a span to name
