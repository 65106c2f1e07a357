"""End to end on generated data with `--eval-users`: the Evaluator measures the eval purchases of
a seeded sample of eval users (components/eval_sample.py), and its figures are exactly the
model's on those purchases; the run report says so and measures its popularity baseline on the
same purchases."""

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from components import eval_sample, evaluator, run_report
from models import features, ranking_metrics
from models.examples import purchase_examples
from pipeline import configs
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e
SAMPLE = 15


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    fake_asos.write_fake_asos(str(root / "data"))
    config = helpers.test_config(
        str(root / "data"), str(root / "out"),
        training=configs.TrainingConfig(overrides={"embedding_dim": 8, "epochs": 2, "batch_size": 64}),
        gate=configs.GateConfig(lower_bounds={"recall_at_10": 0.0, "sampled_accuracy": 0.0}, eval_users=SAMPLE))
    helpers.run(config)
    return root, config


def test_the_evaluator_measures_the_purchases_of_the_sampled_users_only(run):
    root, config = run
    assert helpers.executions(config)["EvalSample"] == ["COMPLETE"]
    eval_rows = pq.read_table(str(root / "data" / configs.EVAL_FILE)).to_pydict()
    users = [u if isinstance(u, bytes) else u.encode() for u in eval_rows[features.USER_KEY]]
    chosen = set(sorted(set(users), key=lambda u: eval_sample.user_key(u, eval_sample.DEFAULT_SEED))[:SAMPLE])
    kept = [(u, p) for u, p in zip(users, eval_rows[features.PRODUCT_KEY]) if u in chosen]
    assert len(set(users)) > SAMPLE and 0 < len(kept) < len(users)
    [model_uri] = helpers.output_uris(config, "Trainer", "model")
    signatures = tf.saved_model.load(os.path.join(model_uri, "Format-Serving")).signatures
    ranks = ranking_metrics.evaluate_ranks(signatures, purchase_examples(*zip(*kept)))
    expected = ranking_metrics.purchase_metrics(ranks)
    [evaluation] = helpers.output_uris(config, "Evaluator", "evaluation")
    measured = evaluator.gate_verdict(evaluation)["values"][evaluator.CANDIDATE]
    for name in ("recall_at_10", "ndcg_at_10", "mrr", "sampled_accuracy"):
        assert measured[name] == pytest.approx(expected[name]), name


def test_the_report_says_which_purchases_and_measures_the_baseline_on_them(run):
    _, config = run
    [uri] = helpers.output_uris(config, "RunReport", "report")
    with open(os.path.join(uri, run_report.JSON_FILE)) as f:
        figures = json.load(f)
    protocol = figures["evaluation"]["protocol"]
    assert protocol.startswith(f"On a seeded sample of {SAMPLE} of the "), protocol
    sampled = int(protocol.split(": their ", 1)[1].split(" ")[0])
    [examples] = helpers.output_uris(config, "EvalSample", "sampled")
    files = tf.io.gfile.glob(os.path.join(examples, "Split-eval", "*"))
    assert sampled == sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    popular = figures["evaluation"]["models"]["most popular"]["recall_at_k"]
    assert len(popular) == 100 and np.all(np.diff(popular) >= 0)
    assert figures["data"]["eval"]["purchases"] > sampled  # the data section: the whole split
