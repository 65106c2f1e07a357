"""BatchRecommendations: the top-K products for every known user, precomputed, as sharded parquet.

Takes the Pusher's two inputs (the Trainer's model and the Evaluator's blessing) and, like TFX's
BulkInferrer, writes lists only for a blessed model: a refused model writes no recommendations
(its output artifact says `blessed: 0, users: 0`). Given the Pusher's `pushed_model` (as the
pipeline does), it runs after the Pusher and writes lists only for a model that serves: a
blessed model the Pusher left out (the same as a version a rollback took out of service,
components/pusher.py) writes none either (`pushed: 0, users: 0`), so the latest lists are
always a served model's.

- **Who**: every user of Transform's user vocabulary (`user_vocab` in the transform graph: the
  train split's distinct users, the users the model has a vector for). Users never seen in train
  have nothing to personalise; serving answers them with the popular products at request time.
- **What**: exactly what the SavedModel's `serving_default` signature answers for the user (its
  top K, the user's train purchases left out), through Beam's `RunInference` with a model
  handler that loads the SavedModel with `tf.saved_model.load` and calls `serving_default` on
  batches of raw user ids. (TFX's BulkInferrer cannot be used: it feeds serialized tf.Examples
  to a one-string-input signature, and `serving_default` would take each as an unknown user id.)
- **Where**: `<artifact uri>/recommendations/part-SSSSS-of-NNNNN.parquet`, one row per (user,
  rank): `dummyUserId` (string), `rank` (1 = best), `productId` (int64), `score` (float32); a
  user with fewer than K products left to buy has fewer rows (serving's padding is left out);
  `<artifact uri>/summary.json` and the artifact's custom properties give the counts. Optionally
  also a BigQuery table (`bigquery_table`, PROJECT.DATASET.TABLE, replaced on each run).

- **Where it runs**: in Beam's workers, reading included. The users are read from the
  vocabulary file by the workers (`ReadFromText`, split across them), cut into chunks and
  reshuffled so that the chunks spread over every worker, and each worker loads the SavedModel
  once (RunInference). The component's own process only builds the Beam pipeline and checks the
  counts it returns: on Dataflow (the Vertex pipeline with `--dataflow`: the same image, the
  pipeline's Beam args) the scoring is sharded across Dataflow's workers, however many users
  there are. (It used to read the users in the component's process and send them inside the
  pipeline's graph with `beam.Create`, which a Dataflow job graph of 10 MB or more refuses.)
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
from absl import logging
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import path_utils

from components import beam_metrics
from models import features

SIGNATURE = "serving_default"
RECOMMENDATIONS_DIR = "recommendations"
SUMMARY_FILE = "summary.json"
SHARD_PREFIX = "part"
DEFAULT_BATCH_SIZE = 1024
COUNTER_NAMESPACE = "batch_recommendations"

# The parquet file's and the BigQuery table's columns.
PARQUET_SCHEMA = pa.schema([
    (features.USER_KEY, pa.string()),
    ("rank", pa.int32()),
    (features.PRODUCT_KEY, pa.int64()),
    ("score", pa.float32()),
])
BIGQUERY_SCHEMA = ",".join(f"{name}:{kind}" for name, kind in [
    (features.USER_KEY, "STRING"), ("rank", "INT64"), (features.PRODUCT_KEY, "INT64"),
    ("score", "FLOAT64")])


def check_sizes(batch_size: Optional[int], num_shards: Optional[int]) -> None:
    """ValueError for a batch size below 1 or a negative shard count (0 or None: the defaults).
    A negative batch size made no chunks at all: the run failed only after loading the model,
    with "covered 0 of N users"."""
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (users per serving_default call), got {batch_size}")
    if num_shards is not None and num_shards < 0:
        raise ValueError(f"num_shards must be >= 0 (0: Beam chooses), got {num_shards}")


def as_chunk(users: Sequence[bytes]) -> np.ndarray:
    """A list of users -> RunInference's element: one array (one `serving_default` call)."""
    return np.array(users, dtype=object)


class ServingDefaultModelHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """RunInference's model handler for the recommender SavedModel: raw user ids in, the
    `serving_default` outputs (`products`, `scores`, `known_user`) out.

    An element is a chunk of users (an array of ids), one `serving_default` call, and its result
    holds the chunk's arrays: 43,607 ASOS users are 43 elements between Beam's stages, not
    43,607 pickled per-user results (which took most of the component's time)."""

    def __init__(self, model_path: str):
        super().__init__()
        self._model_path = model_path

    def load_model(self) -> Any:
        import tensorflow as tf  # in the worker (Dataflow): not pickled with the handler

        model = tf.saved_model.load(self._model_path)
        if SIGNATURE not in model.signatures:
            raise ValueError(f"{self._model_path} has no {SIGNATURE!r} signature "
                             f"(it has {sorted(model.signatures)})")
        return model

    def run_inference(self, batch: Sequence[np.ndarray], model: Any,
                      inference_args: Optional[Dict[str, Any]] = None) -> Iterable[PredictionResult]:
        import tensorflow as tf

        results = []
        for users in batch:
            out = model.signatures[SIGNATURE](user_id=tf.constant(list(users), dtype=tf.string))
            results.append(PredictionResult(users, {
                "products": out["products"].numpy(), "scores": out["scores"].numpy(),
                "known_user": out["known_user"].numpy()}, self._model_path))
        return results

    def batch_elements_kwargs(self) -> Dict[str, Any]:
        return {"min_batch_size": 1, "max_batch_size": 1}  # an element is a batch already

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(len(u) for users in batch for u in users)


def user_strings(users: np.ndarray) -> List[str]:
    """User ids as str (Beam and the SavedModel hand them over as bytes)."""
    return [u.decode() if isinstance(u, bytes) else u for u in users]


def to_table(result: PredictionResult) -> pa.Table:
    """One chunk's results -> a columnar table (rows ordered by user, then rank)."""
    users = user_strings(result.example)
    products = np.asarray(result.inference["products"], np.int64)
    scores = np.asarray(result.inference["scores"], np.float32)
    k = products.shape[1]
    real = products.reshape(-1) != features.PADDING_PRODUCT  # fewer products left than k: no row
    return pa.Table.from_arrays([
        pa.array(np.repeat(np.array(users, dtype=object), k)[real], pa.string()),
        pa.array(np.tile(np.arange(1, k + 1, dtype=np.int32), len(users))[real]),
        pa.array(products.reshape(-1)[real]),
        pa.array(scores.reshape(-1)[real]),
    ], schema=PARQUET_SCHEMA)


def to_bigquery_rows(result: PredictionResult) -> Iterable[Dict[str, Any]]:
    products, scores = result.inference["products"], result.inference["scores"]
    for i, user in enumerate(user_strings(result.example)):
        for rank, (product, score) in enumerate(zip(products[i], scores[i]), start=1):
            if product == features.PADDING_PRODUCT:
                break
            yield {features.USER_KEY: user, "rank": rank, features.PRODUCT_KEY: int(product),
                   "score": float(score)}


class _CountRead(beam.DoFn):
    """Counts the users read from the vocabulary (the total the executor checks against)."""

    def __init__(self):
        self.read = beam.metrics.Metrics.counter(COUNTER_NAMESPACE, "users_read")

    def process(self, user: bytes):
        self.read.inc()
        yield user


class _Count(beam.DoFn):
    """Counts users (all, and those the model did not know) and passes results through."""

    def __init__(self):
        self.users = beam.metrics.Metrics.counter(COUNTER_NAMESPACE, "users")
        self.unknown = beam.metrics.Metrics.counter(COUNTER_NAMESPACE, "unknown_users")
        self.top_k = beam.metrics.Metrics.distribution(COUNTER_NAMESPACE, "top_k")
        self.rows = beam.metrics.Metrics.counter(COUNTER_NAMESPACE, "rows")  # padding left out

    def process(self, result: PredictionResult):
        known = np.asarray(result.inference["known_user"], bool)
        self.users.inc(len(known))
        self.unknown.inc(int((~known).sum()))
        self.top_k.update(int(np.shape(result.inference["products"])[1]))
        self.rows.inc(int((np.asarray(result.inference["products"]) != features.PADDING_PRODUCT).sum()))
        yield result


def users_file(transform_graph_uri: str) -> str:
    """The user vocabulary file of the transform graph (one user id a line): the users the model
    was trained on."""
    import tensorflow_transform as tft

    return tft.TFTransformOutput(transform_graph_uri).vocabulary_file_by_name(features.USER_VOCAB)


def read_users(transform_graph_uri: str) -> List[bytes]:
    """The user vocabulary of the transform graph, in this process (benchmarks, tests)."""
    import tensorflow_transform as tft

    return list(tft.TFTransformOutput(transform_graph_uri).vocabulary_by_name(features.USER_VOCAB))


def recommend(pipeline: beam.Pipeline, users_path: str, model_path: str, output_prefix: str,
              *, batch_size: int = DEFAULT_BATCH_SIZE, num_shards: int = 0,
              bigquery_table: Optional[str] = None) -> None:
    """Adds the batch-recommendation steps to `pipeline`: the users of `users_path` (read by the
    workers) in chunks of `batch_size` -> RunInference -> parquet (and BigQuery when a table is
    given)."""
    results = (
        pipeline
        | "ReadUsers" >> beam.io.ReadFromText(users_path, coder=beam.coders.BytesCoder())
        | "CountRead" >> beam.ParDo(_CountRead())
        | "Chunks" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
        | "AsArrays" >> beam.Map(as_chunk)
        | "Spread" >> beam.Reshuffle()  # the chunks over every worker, not the reader's few
        | "RunInference" >> RunInference(ServingDefaultModelHandler(model_path))
        | "Count" >> beam.ParDo(_Count()))
    _ = (results
         | "ToTable" >> beam.Map(to_table)
         | "WriteParquet" >> beam.io.WriteToParquetBatched(
             output_prefix, schema=PARQUET_SCHEMA, file_name_suffix=".parquet",
             num_shards=num_shards, shard_name_template="-SSSSS-of-NNNNN"))
    if bigquery_table:
        _ = (results
             | "ToRows" >> beam.FlatMap(to_bigquery_rows)
             | "WriteBigQuery" >> beam.io.WriteToBigQuery(
                 bigquery_table, schema=BIGQUERY_SCHEMA,
                 create_disposition=beam.io.BigQueryDisposition.CREATE_IF_NEEDED,
                 write_disposition=beam.io.BigQueryDisposition.WRITE_TRUNCATE))


class Executor(base_beam_executor.BaseBeamExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        output = artifact_utils.get_single_instance(output_dict["recommendations"])
        blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
        if not model_utils.is_model_blessed(blessing):
            output.set_int_custom_property("blessed", 0)
            output.set_int_custom_property("users", 0)
            message = "[batch] the model is not blessed: no batch recommendations"
            logging.info(message)
            print(message, flush=True)
            return
        pushed = input_dict.get("pushed_model") or []
        if pushed and not (pushed[0].has_custom_property("pushed")
                           and pushed[0].get_int_custom_property("pushed")):
            output.set_int_custom_property("blessed", 1)
            output.set_int_custom_property("pushed", 0)
            output.set_int_custom_property("users", 0)
            message = ("[batch] the model was not pushed: no batch recommendations (the latest "
                       "lists stay those of the model served)")
            logging.info(message)
            print(message, flush=True)
            return
        model = artifact_utils.get_single_instance(input_dict["model"])
        model_path = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
        check_sizes(*(None if exec_properties.get(k) is None else int(exec_properties[k])
                      for k in ("batch_size", "num_shards")))
        users_path = users_file(artifact_utils.get_single_uri(input_dict["transform_graph"]))
        table = exec_properties.get("bigquery_table") or None
        out_dir = os.path.join(output.uri, RECOMMENDATIONS_DIR)
        pipeline = self._make_beam_pipeline()
        recommend(pipeline, users_path, model_path, os.path.join(out_dir, SHARD_PREFIX),
                  batch_size=int(exec_properties.get("batch_size") or DEFAULT_BATCH_SIZE),
                  num_shards=int(exec_properties.get("num_shards") or 0), bigquery_table=table)
        result = pipeline.run()
        result.wait_until_finish()
        read, covered, unknown, rows = (beam_metrics.counter(result, COUNTER_NAMESPACE, name)
                                        for name in ("users_read", "users", "unknown_users", "rows"))
        top_k = max((d.max for d in beam_metrics.values(result, COUNTER_NAMESPACE, "top_k", "distributions")
                     if d.count), default=0)
        if covered != read or unknown or not read:
            raise RuntimeError(f"batch recommendations covered {covered} of {read} users read from "
                               f"{users_path}, {unknown} of them unknown to the model")
        import tensorflow as tf

        files = sorted(os.path.basename(f) for f in tf.io.gfile.glob(os.path.join(out_dir, "*.parquet")))
        summary = {"users": covered, "top_k": top_k, "rows": rows, "files": files,
                   "directory": out_dir, "model": model_path, "bigquery_table": table}
        with tf.io.gfile.GFile(os.path.join(output.uri, SUMMARY_FILE), "w") as f:
            json.dump(summary, f, indent=2)
        output.set_int_custom_property("blessed", 1)
        output.set_int_custom_property("users", covered)
        output.set_int_custom_property("top_k", summary["top_k"])
        output.set_int_custom_property("rows", summary["rows"])
        output.set_int_custom_property("files", len(files))
        if table:
            output.set_string_custom_property("bigquery_table", table)
        message = (f"[batch] top {summary['top_k']} products for {covered} users: "
                   f"{len(files)} parquet files in {out_dir}" + (f", and {table}" if table else ""))
        logging.info(message)
        print(message, flush=True)


class BatchRecommendationsSpec(ComponentSpec):
    PARAMETERS = {
        "bigquery_table": ExecutionParameter(type=str, optional=True),
        "batch_size": ExecutionParameter(type=int, optional=True),
        "num_shards": ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph),
        "pushed_model": ChannelParameter(type=standard_artifacts.PushedModel, optional=True),
    }
    OUTPUTS = {
        "recommendations": ChannelParameter(type=standard_artifacts.InferenceResult),
    }


class BatchRecommendations(base_beam_component.BaseBeamComponent):
    """Top-K products for every known user of a blessed model (see the module docstring)."""

    SPEC_CLASS = BatchRecommendationsSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 transform_graph: types.BaseChannel, bigquery_table: Optional[str] = None,
                 batch_size: Optional[int] = None, num_shards: Optional[int] = None,
                 pushed_model: Optional[types.BaseChannel] = None):
        check_sizes(batch_size, num_shards)
        super().__init__(spec=BatchRecommendationsSpec(
            model=model, model_blessing=model_blessing, transform_graph=transform_graph,
            pushed_model=pushed_model,
            bigquery_table=bigquery_table or None, batch_size=batch_size, num_shards=num_shards,
            recommendations=types.Channel(type=standard_artifacts.InferenceResult)))
