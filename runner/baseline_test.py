"""The local run's baseline decided before the run: the window it compares is ExampleGen's."""

import pytest

from pipeline import configs
from pipeline import pipeline as pipeline_def
from runner import baseline as runner_baseline


def _window(data_dir, out_dir, **overrides):
    config = configs.PipelineConfig(data_dir=str(data_dir), output_dir=str(out_dir), verify_checksums=False,
                                    **overrides)
    return runner_baseline.window_spans(pipeline_def.create_pipeline(config))


@pytest.mark.parametrize("window, spans", [(1, [3]), (2, [2, 3]), (5, [1, 2, 3])])
def test_the_window_is_the_one_example_gen_selects(tmp_path, write_fake_spans, window, spans):
    write_fake_spans(str(tmp_path / "data"), num_spans=3, rows_per_span=50)
    assert _window(tmp_path / "data", tmp_path / "out", span_window=window) == spans


def test_the_flat_layout_is_span_0_and_an_unreadable_layout_none(tmp_path, write_fake_asos):
    write_fake_asos(str(tmp_path / "flat"))
    assert _window(tmp_path / "flat", tmp_path / "out") == [0]
    (tmp_path / "empty").mkdir()
    assert _window(tmp_path / "empty", tmp_path / "out") is None
