"""local_runner's command line: flags to configuration, and errors that stop before any work."""

import io
import os

import pytest

import local_runner
from pipeline import configs
from runner import console


def test_flags_set_the_configuration(tmp_path):
    config = local_runner.parse_config([
        "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--skip-checksums",
        "--no-cache", "--beam-workers", "2", "--preset", "notebook",
        "--model-param", "epochs=3", "--model-param", "sampling=mixed",
        "--model-param", "learning_rate=0.5", "--cold-start"])
    assert (config.data_dir, config.output_dir) == (str(tmp_path), str(tmp_path / "out"))
    assert not config.verify_checksums and not config.enable_cache and config.beam_workers == 2
    assert config.training.preset == "notebook"
    assert config.training.overrides == {"epochs": 3, "sampling": "mixed", "learning_rate": 0.5}
    assert config.training.cold_start and config.training.custom_config()["cold_start"] is True
    assert not local_runner.parse_config([]).training.cold_start
    assert "--direct_num_workers=2" in config.beam_pipeline_args()
    # named: Beam's DirectRunner would first try to download Prism
    assert "--runner=FnApiRunner" in config.beam_pipeline_args()
    # a declared dependency: TFX builds no TFX sdist for Beam in every Beam component
    setup = next(a for a in config.beam_pipeline_args() if a.startswith("--setup_file="))
    assert os.path.exists(setup.split("=", 1)[1])


def test_defaults_are_the_configs_defaults():
    config = local_runner.parse_config([])
    assert config == configs.PipelineConfig()


@pytest.mark.parametrize("param, message", [
    ("dropout=0.1", "unknown ModelConfig keys: dropout"),
    ("sampling=hard", "sampling must be one of"),
])
def test_a_bad_model_parameter_stops_before_any_work(tmp_path, param, message):
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"),
                              "--model-param", param], stream=stream)
    assert code == console.EXIT_USAGE
    assert message in stream.getvalue()
    assert not (tmp_path / "out").exists()


def test_span_window_and_drift_flags(tmp_path):
    config = local_runner.parse_config(["--span-window", "2", "--drift-threshold", "product_l_infinity=0.01",
                                        "--accept-drift"])
    assert config.span_window == 2 and config.drift.accept
    assert config.drift.thresholds == {**configs.DEFAULT_DRIFT_THRESHOLDS, "product_l_infinity": 0.01}
    defaults = local_runner.parse_config([])
    assert defaults.span_window == configs.DEFAULT_SPAN_WINDOW and not defaults.drift.accept
    with pytest.raises(SystemExit):
        local_runner.parse_config(["--span-window", "0"])
    code, text = _main(tmp_path, "--drift-threshold", "product_linf=0.1")
    assert code == console.EXIT_USAGE and "drift thresholds: unknown product_linf (known: " in text


def _main(tmp_path, *flags):
    """local_runner.main on `tmp_path` with these flags: (exit code, what the console said)."""
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), *flags],
                             stream=stream)
    return code, stream.getvalue()


def test_gate_bounds_from_flags(tmp_path):
    config = local_runner.parse_config(["--gate-bound", "recall_at_10=0.3", "--gate-bound", "mrr=0.01"])
    assert config.gate.lower_bounds == {**configs.DEFAULT_LOWER_BOUNDS, "recall_at_10": 0.3, "mrr": 0.01}
    with pytest.raises(SystemExit):
        local_runner.parse_config(["--gate-bound", "recall_at_10"])
    code, text = _main(tmp_path, "--gate-bound", "precision=0.5")
    assert code == console.EXIT_USAGE and "no such metric to gate on: ['precision']" in text


def test_the_popularity_margin_from_flags():
    assert local_runner.parse_config([]).gate.popularity_margin == configs.DEFAULT_POPULARITY_MARGIN
    assert local_runner.parse_config(["--gate-popularity-margin", "0.25"]).gate.popularity_margin == 0.25
    assert local_runner.parse_config(["--gate-popularity-margin", "off"]).gate.popularity_margin is None
    for bad in ("-0.1", "inf", "ten"):
        with pytest.raises(SystemExit):
            local_runner.parse_config(["--gate-popularity-margin", bad])


def test_missing_data_is_rejected_with_the_file_named(tmp_path):
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", str(tmp_path), "--skip-checksums",
                              "--output-dir", str(tmp_path / "out")], stream=stream)
    assert code == console.EXIT_DATA_REJECTED
    assert f"{configs.TRAIN_FILE}" in stream.getvalue()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value, message", [
    ("--model-param", "embedding_dim=abc", "embedding_dim must be an integer, got 'abc'"),
    ("--model-param", "epochs=2.5", "epochs must be an integer, got 2.5"),
    ("--gate-bound", "recall_at_10=1.5", "the bound of recall_at_10 must be between 0 and 1"),
    ("--gate-bound", "ndcg_at_10=nan", "the bound of ndcg_at_10 must be between 0 and 1"),
])
def test_a_bad_value_stops_before_any_work(tmp_path, flag, value, message):
    """Each used to run the pipeline: a Trainer crash (exit 1), or a model trained and refused (exit 3)."""
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"),
                              flag, value], stream=stream)
    assert code == console.EXIT_USAGE, stream.getvalue()
    assert message in stream.getvalue()
    assert not (tmp_path / "out").exists()


def test_negative_beam_workers_are_a_flag_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        local_runner.parse_config(["--beam-workers", "-1"])  # Beam: IndexError inside ExampleGen
    assert exit_.value.code == console.EXIT_USAGE
    assert "-1 is not a number of workers" in capsys.readouterr().err


def _words(text):
    """A console's words, its lines joined: a line longer than 100 columns goes on on the next
    (runner/console.py fit_text)."""
    return " ".join(text.split())


def test_a_data_dir_that_is_a_file_is_named(tmp_path):
    data_file = tmp_path / "data.parquet"
    data_file.write_bytes(b"PAR1")
    for checksums in ([], ["--skip-checksums"]):  # with checksums it was FileExistsError, exit 1
        stream = io.StringIO()
        code = local_runner.main(["--data-dir", str(data_file), "--output-dir", str(tmp_path / "out")]
                                 + checksums, stream=stream)
        assert code == console.EXIT_DATA_REJECTED
        assert f"{data_file} is a file, not a directory" in _words(stream.getvalue())


def test_an_output_dir_that_cannot_be_written_is_named(tmp_path, fake_data_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", fake_data_dir, "--skip-checksums",
                              "--output-dir", str(blocker / "out")], stream=stream)
    assert code == console.EXIT_USAGE  # was exit 1, "the run stopped: NotADirectoryError"
    said = _words(stream.getvalue())  # the last line, and the lines it goes on on
    assert said.endswith(f"error: cannot write into --output-dir {blocker / 'out'}: {blocker} is a file, not a "
                         "directory")


def test_an_output_dir_that_is_a_file_is_refused_before_the_data_is_read(tmp_path):
    """Found by exploratory testing: it was refused only after the data checks (which read every
    file, and download the ASOS files into a new --data-dir)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", str(tmp_path / "no-data-here"), "--output-dir", str(blocker)],
                             stream=stream)
    assert code == console.EXIT_USAGE, stream.getvalue()
    assert _words(stream.getvalue()).endswith(
        f"error: cannot write into --output-dir {blocker}: {blocker} is a file, not a directory")
    assert not (tmp_path / "no-data-here").exists()  # no download was tried


def test_a_busy_or_orphaned_output_dir_is_refused_before_the_data_is_read(tmp_path):
    """Found by exploratory testing: a second run read the data before it was refused as busy; a
    run after `rm -rf outputs/metadata` wrote its outputs over the first run's."""
    from runner import run_lock

    out = tmp_path / "out"
    config = configs.PipelineConfig(data_dir=str(tmp_path / "no-data-here"), output_dir=str(out))
    os.makedirs(os.path.join(config.pipeline_root, "Trainer"))
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", config.data_dir, "--output-dir", str(out)], stream=stream)
    assert code == console.EXIT_USAGE, stream.getvalue()
    said = _words(stream.getvalue())
    assert said.startswith(f"error: the ML Metadata store {config.metadata_path} is missing, but "
                           f"{config.pipeline_root} holds") and said.count("error:") == 1
    with run_lock.hold(str(out)):  # another run on it
        stream = io.StringIO()
        code = local_runner.main(["--data-dir", config.data_dir, "--output-dir", str(out)], stream=stream)
    assert code == console.EXIT_BUSY and "another run is using" in stream.getvalue()
    assert not (tmp_path / "no-data-here").exists()  # no download was tried


def test_serving_top_k_from_the_flag_checked(capsys):
    assert local_runner.parse_config([]).training.serving_top_k == 100
    config = local_runner.parse_config(["--serving-top-k", "20"])
    assert config.training.serving_top_k == 20 and config.training.custom_config()["serving_top_k"] == 20
    for value in ("0", "-5", "ten"):
        with pytest.raises(SystemExit) as exit_:
            local_runner.parse_config(["--serving-top-k", value])
        assert exit_.value.code == console.EXIT_USAGE
        assert "argument --serving-top-k:" in capsys.readouterr().err


def test_the_gate_bound_help_names_the_evaluators_metrics(capsys):
    from models import features

    with pytest.raises(SystemExit):
        local_runner.parse_config(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in features.EVAL_METRICS)
