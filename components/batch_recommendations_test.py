"""BatchRecommendations' executor: the parquet it writes, the counts it records, and nothing for a
refused model. Its inputs: a real transform graph (the project's preprocessing_fn run by
tf.Transform on generated purchases, models/testing.py: its user vocabulary says who gets lists)
and a small hand-written SavedModel with the recommender's `serving_default` contract (raw user
ids in; products, scores, known_user out), whose answers are simple functions of the user's
index, so that every expected list is known. The trained model, in the whole pipeline:
tests/test_pipeline_gate.py (local) and tests/test_kubeflow_v2_harness.py (the compiled
pipeline)."""

import json
import os
import shutil

import apache_beam as beam
import numpy as np
import pyarrow.dataset as ds
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts

from components import batch_recommendations as batch
from models import features, testing
from pipeline import configs

K = 5
NUM_PRODUCTS = 12


class _Recommender(tf.Module):
    """Known users get K products derived from a hash of their id; others get products 1..K."""

    def __init__(self, users):
        super().__init__()
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(users), tf.range(len(users), dtype=tf.int64)), -1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def serve(self, user_id):
        idx = self.table.lookup(user_id)
        known = idx >= 0
        base = tf.where(known, idx, 0)[:, None]
        products = 1000 + (base * 7 + tf.range(K, dtype=tf.int64)[None, :]) % NUM_PRODUCTS
        scores = tf.cast(K - tf.range(K), tf.float32)[None, :] + tf.cast(base, tf.float32)
        return {"products": products, "scores": scores, "known_user": known}


USERS = [f"user{i:016d}".encode() for i in range(37)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, curated_schema):
    root = tmp_path_factory.mktemp("batch")
    model_dir = root / "model"
    serving_dir = model_dir / "Format-Serving"
    module = _Recommender(USERS)
    tf.saved_model.save(module, str(serving_dir), signatures={"serving_default": module.serve})
    purchases = testing.purchases(users=[u.decode() for u in USERS], per_user=2)
    _, graph = testing.transform_graph(purchases, curated_schema, str(root / "transform"))
    assert sorted(graph.vocabulary_by_name(features.USER_VOCAB)) == sorted(USERS)
    return {"model": str(model_dir), "serving": str(serving_dir),
            "graph": os.path.dirname(graph.transform_savedmodel_dir), "root": root}


def _run(inputs, out, blessed, mode="in_memory", pushed=None, **props):
    model, blessing, graph = (standard_artifacts.Model(), standard_artifacts.ModelBlessing(),
                              standard_artifacts.TransformGraph())
    model.uri, graph.uri = inputs["model"], inputs["graph"]
    blessing.uri = str(out) + "_blessing"
    blessing.set_int_custom_property("blessed", int(blessed))
    result = standard_artifacts.InferenceResult()
    result.uri = str(out)
    os.makedirs(out, exist_ok=True)
    context = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=configs.local_beam_args(running_mode=mode, workers=2),
        tmp_dir=str(out) + "_tmp", unique_id="1")
    pushed_model = {}
    if pushed is not None:
        pushed_model = {"pushed_model": [standard_artifacts.PushedModel()]}
        pushed_model["pushed_model"][0].set_int_custom_property("pushed", int(pushed))
    batch.Executor(context).Do(
        {"model": [model], "model_blessing": [blessing], "transform_graph": [graph], **pushed_model},
        {"recommendations": [result]}, props)
    return result


# in_memory: the local run's; multi_processing: Vertex's default without Dataflow (counters
# come back from the worker processes; a minute of worker start-up, hence e2e)
@pytest.mark.parametrize("mode", ["in_memory", pytest.param("multi_processing", marks=pytest.mark.e2e)])
def test_every_user_gets_what_serving_default_answers(inputs, tmp_path, mode):
    result = _run(inputs, tmp_path / "out", True, mode, batch_size=8, num_shards=3)
    files = sorted(os.listdir(tmp_path / "out" / batch.RECOMMENDATIONS_DIR))
    assert files == [f"part-0000{i}-of-00003.parquet" for i in range(3)]
    table = ds.dataset(str(tmp_path / "out" / batch.RECOMMENDATIONS_DIR)).to_table()
    assert table.schema == batch.PARQUET_SCHEMA
    frame = table.to_pandas().sort_values([features.USER_KEY, "rank"])
    assert sorted(frame[features.USER_KEY].unique()) == sorted(u.decode() for u in USERS)
    model = tf.saved_model.load(inputs["serving"])
    expected = model.signatures["serving_default"](user_id=tf.constant(USERS))
    for i, user in enumerate(USERS):
        rows = frame[frame[features.USER_KEY] == user.decode()]
        assert list(rows["rank"]) == list(range(1, K + 1))
        assert list(rows[features.PRODUCT_KEY]) == list(expected["products"][i].numpy())
        assert list(rows["score"]) == pytest.approx(list(expected["scores"][i].numpy()))
    assert table.num_rows == 185  # 37 users, 5 products each
    props = {k: result.get_int_custom_property(k) for k in ("blessed", "users", "top_k", "rows", "files")}
    assert props == {"blessed": 1, "users": 37, "top_k": 5, "rows": 185, "files": 3}
    with open(tmp_path / "out" / batch.SUMMARY_FILE) as f:
        summary = json.load(f)
    assert (summary["users"], summary["top_k"], summary["files"]) == (37, 5, files)


def test_the_users_are_read_by_the_workers_not_by_the_components_process(inputs, tmp_path, monkeypatch):
    """On Dataflow the component's process only submits the job: the users must not pass
    through it, nor ride inside the job's graph (Dataflow refuses a graph of 10 MB or more)."""
    def refuse(*_):
        raise AssertionError("the component's process read the user vocabulary")

    monkeypatch.setattr(tft.TFTransformOutput, "vocabulary_by_name", refuse)
    result = _run(inputs, tmp_path / "out", True, batch_size=8)
    assert result.get_int_custom_property("users") == len(USERS)

    def graph_size(vocabulary_lines):
        path = tmp_path / f"users-{vocabulary_lines:07d}"
        path.write_bytes(b"".join(b"user%016d\n" % i for i in range(vocabulary_lines)))
        pipeline = beam.Pipeline(runner="FnApiRunner")
        try:
            batch.recommend(pipeline, str(path), inputs["serving"], str(tmp_path / "o" / "part"), batch_size=8)
            return len(pipeline.to_runner_api().SerializeToString())
        finally:  # a pipeline never run keeps its temp dir in /tmp
            shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)

    # the same graph whatever the number of users (with beam.Create of the users: 5 MB more)
    assert abs(graph_size(37) - graph_size(200_000)) < 10_000


def test_a_refused_model_writes_nothing(inputs, tmp_path):
    result = _run(inputs, tmp_path / "out", False)
    assert os.listdir(tmp_path / "out") == []
    assert (result.get_int_custom_property("blessed"), result.get_int_custom_property("users")) == (0, 0)


def test_a_blessed_model_the_pusher_left_out_writes_nothing(inputs, tmp_path):
    """The Pusher leaves out a blessed model that a rollback took out of service: the latest lists
    must stay those of the model served."""
    result = _run(inputs, tmp_path / "out", True, pushed=False)
    assert os.listdir(tmp_path / "out") == []
    assert (result.get_int_custom_property("pushed"), result.get_int_custom_property("users")) == (0, 0)
    assert _run(inputs, tmp_path / "pushed", True, pushed=True).get_int_custom_property("users") == len(USERS)


def test_a_model_without_serving_default_is_named(tmp_path):
    module = tf.Module()
    module.f = tf.function(lambda x: x, input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"other": module.f})
    with pytest.raises(ValueError, match="no 'serving_default' signature"):
        batch.ServingDefaultModelHandler(str(tmp_path / "m")).load_model()


def test_the_run_report_reads_coverage_from_these_lists(inputs, tmp_path, monkeypatch):
    """RunReport's candidate coverage@k from these lists equals asking `serving_default` again
    (users without a list asked through the model); lists of another model are not used."""
    from components import report_figures

    monkeypatch.setattr(report_figures, "COVERAGE_K", 3)  # this model's lists hold K = 5 products
    _run(inputs, tmp_path / "out", True, batch_size=8)
    signatures = tf.saved_model.load(inputs["serving"]).signatures
    # users 1 and 2 get products 7-9 and 2-4 (and 5: ranks 4-5), an unknown one 0-2
    eval_users = np.array([USERS[1], USERS[2], USERS[1], b"nobody"], dtype=object)
    asked = report_figures.coverage_at_10(signatures, eval_users, catalog_size=NUM_PRODUCTS)
    assert asked == 8 / NUM_PRODUCTS
    assert report_figures.coverage_from_batch_lists(
        str(tmp_path / "out"), inputs["serving"], signatures, eval_users, NUM_PRODUCTS) == asked
    assert report_figures.coverage_from_batch_lists(
        str(tmp_path / "out"), "/another/model", signatures, eval_users, NUM_PRODUCTS) is None
    _run(inputs, tmp_path / "refused", False)
    assert report_figures.coverage_from_batch_lists(
        str(tmp_path / "refused"), inputs["serving"], signatures, eval_users, NUM_PRODUCTS) is None


@pytest.mark.parametrize("sizes, message", [
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"batch_size": -5}, "batch_size must be >= 1"),  # made no chunks: "covered 0 of N users"
    ({"num_shards": -1}, "num_shards must be >= 0"),
])
def test_bad_sizes_are_refused_when_the_component_is_built(sizes, message):
    from tfx import types

    channels = {name: types.Channel(type=cls) for name, cls in [
        ("model", standard_artifacts.Model), ("model_blessing", standard_artifacts.ModelBlessing),
        ("transform_graph", standard_artifacts.TransformGraph)]}
    with pytest.raises(ValueError, match=message):
        batch.BatchRecommendations(**channels, **sizes)
    batch.BatchRecommendations(**channels, batch_size=1, num_shards=0)


def test_a_list_that_ends_in_padding_writes_no_rows_for_it():
    """Serving pads a list where fewer than K products are left (features.PADDING_PRODUCT); the
    lists written hold the real products only, ranked from 1."""
    from apache_beam.ml.inference.base import PredictionResult

    pad, lowest = features.PADDING_PRODUCT, np.finfo(np.float32).min
    result = PredictionResult(np.array([b"u1", b"u2"], object), {
        "products": np.array([[7, 8, 9], [5, pad, pad]], np.int64),
        "scores": np.array([[0.3, 0.2, 0.1], [0.4, lowest, lowest]], np.float32),
        "known_user": np.array([True, True])})
    assert batch.to_table(result).to_pylist() == [
        {features.USER_KEY: "u1", "rank": 1, features.PRODUCT_KEY: 7, "score": pytest.approx(0.3)},
        {features.USER_KEY: "u1", "rank": 2, features.PRODUCT_KEY: 8, "score": pytest.approx(0.2)},
        {features.USER_KEY: "u1", "rank": 3, features.PRODUCT_KEY: 9, "score": pytest.approx(0.1)},
        {features.USER_KEY: "u2", "rank": 1, features.PRODUCT_KEY: 5, "score": pytest.approx(0.4)}]
    assert [(r[features.USER_KEY], r["rank"]) for r in batch.to_bigquery_rows(result)] == [
        ("u1", 1), ("u1", 2), ("u1", 3), ("u2", 1)]
