"""The code fingerprint in Transform's and the Trainer's custom_config and the Evaluator's
module_code: it covers exactly the code each of them runs, so editing other code does not re-run
them (and editing theirs does)."""

import os
import sys
import textwrap

import pytest

from pipeline import code_fingerprint, configs


def _names(paths):
    return {os.path.relpath(p, configs.PROJECT_DIR) for p in paths}


def test_the_trainer_runs_the_model_code_and_not_the_preprocessing():
    trainer = _names(code_fingerprint.module_closure("models.trainer"))
    assert {"models/trainer.py", "models/model.py", "models/sampling.py", "models/exporter.py",
            "models/features.py"} <= trainer
    assert "models/preprocessing.py" not in trainer
    assert not any(name.startswith(("pipeline/", "components/")) for name in trainer)


def test_transform_runs_only_the_preprocessing_and_the_feature_names():
    assert _names(code_fingerprint.module_closure("models.preprocessing")) == {
        "models/__init__.py", "models/features.py", "models/preprocessing.py"}


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A throwaway package `fp_pkg`: a imports b (two ways), c stands alone."""
    root = tmp_path / "fp_pkg"
    root.mkdir()
    files = {
        "__init__.py": "",
        "a.py": "from fp_pkg import b\nfrom fp_pkg.d import helper\nimport numpy\n\ndef run_fn():\n    return b.X\n",
        "b.py": "X = 1\n",
        "c.py": "Y = 2\n",
        "d.py": "def helper():\n    return 3\n",
    }
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    sys.modules.pop("fp_pkg", None)


def test_a_change_in_an_imported_module_changes_the_fingerprint(package):
    before = code_fingerprint.fingerprint("fp_pkg.a.run_fn")
    assert _names_in(package, code_fingerprint.module_closure("fp_pkg.a")) == {
        "__init__.py", "a.py", "b.py", "d.py"}
    (package / "c.py").write_text("Y = 3\n")  # not imported by a: same fingerprint
    assert code_fingerprint.fingerprint("fp_pkg.a.run_fn") == before
    (package / "d.py").write_text("def helper():\n    return 4\n")  # imported by a
    changed = code_fingerprint.fingerprint("fp_pkg.a.run_fn")
    assert changed != before
    (package / "b.py").write_text("X = 2\n")
    assert code_fingerprint.fingerprint("fp_pkg.a.run_fn") not in (before, changed)


def _names_in(root, paths):
    return {os.path.relpath(p, root) for p in paths}


def test_the_evaluator_runs_the_metrics_and_not_the_model_code():
    metrics = _names(code_fingerprint.module_closure("models.eval_metrics"))
    assert {"models/eval_metrics.py", "models/ranking_metrics.py"} <= metrics
    assert not {"models/trainer.py", "models/preprocessing.py"} & metrics


def test_an_unknown_module_is_an_error():
    with pytest.raises(ValueError, match="models.nothing.run_fn: no module 'models.nothing'"):
        code_fingerprint.fingerprint("models.nothing.run_fn")
    with pytest.raises(ValueError, match="no module 'models.nothing'"):
        code_fingerprint.module_fingerprint("models.nothing")


def test_the_pipeline_passes_each_component_its_own_fingerprint(fake_data_dir, tmp_path):
    from pipeline import pipeline as pipeline_def

    config = configs.PipelineConfig(data_dir=fake_data_dir, output_dir=str(tmp_path))
    nodes = {n.id: n for n in pipeline_def.create_pipeline(config).components}
    transform = nodes["Transform"].exec_properties["custom_config"]
    trainer = nodes["Trainer"].exec_properties["custom_config"]
    assert code_fingerprint.fingerprint(configs.PREPROCESSING_FN) in transform
    assert code_fingerprint.fingerprint(configs.RUN_FN) in trainer
    assert code_fingerprint.fingerprint(configs.PREPROCESSING_FN) != code_fingerprint.fingerprint(configs.RUN_FN)
    evaluator = nodes["Evaluator"].exec_properties["module_code"]
    assert evaluator == code_fingerprint.module_fingerprint("models.eval_metrics")
    assert evaluator not in (code_fingerprint.fingerprint(configs.PREPROCESSING_FN),
                             code_fingerprint.fingerprint(configs.RUN_FN))
