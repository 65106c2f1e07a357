"""The quality table: the pushed model, the notebook's configuration and popularity (prints it).

    make run && env/run-in-env python benchmarks/quality.py

Every row goes through the same path: a serving SavedModel (models/exporter.py) loaded by
plain TensorFlow and asked through its signatures, so the pushed model is measured exactly as it
is served. The notebook's configuration is trained here on the pipeline's own Transform output;
the popularity baseline is exported through the same exporter.

Protocol (docs/model.md, "Protocol"): on the eval split, per user, the ranking of all products
leaving out the user's train purchases: HitRate@10, Recall@10, Recall@100, NDCG@10, MRR, catalog
coverage@10; and per purchase the notebook's sampled accuracy (100 uniform products, seeded per
purchase, identical for every model). Ranks come from the `evaluate` signature (the one TFMA
gates on); the per-purchase figures the gate uses are printed too.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from benchmarks import console  # noqa: F401  (TensorFlow's own lines to outputs/logs/benchmarks.log)

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from benchmarks import references
from models import exporter, ranking_metrics, trainer
from models import model as model_lib
from models import features
from models.baselines import PopularityModel
from pipeline import configs
from runner import metadata


def export_and_load(recommender, transform_output, users, items, directory: str):
    exporter.export_serving_model(
        exporter.ServingModule(recommender, transform_output, users, items,
                               top_k=min(100, recommender.num_items)), directory)
    return tf.saved_model.load(directory)


POPULAR = "most popular products"  # the rows are named as docs/model.md's table names them


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", default=configs.DEFAULT_OUTPUT_DIR,
                   help="the output directory of the 'make run' to measure; default %(default)s")
    p.add_argument("--data-dir", default=configs.default_data_dir())
    args = p.parse_args(argv)
    config = configs.PipelineConfig(output_dir=args.output_dir, data_dir=args.data_dir)
    pushed_dir = metadata.latest_pushed_model(config.serving_model_dir)
    [graph] = metadata.output_uris(config, "Transform", "transform_graph")
    [transformed] = metadata.output_uris(config, "Transform", "transformed_examples")
    transform_output = tft.TFTransformOutput(graph)
    accessor = tfx.components.DataAccessor(  # as the Trainer gets it, for Transform's TFRecords
        tf_dataset_factory=lambda files, options, schema: tfxio.TFExampleRecord(
            files, schema=schema).TensorFlowDataset(options),
        record_batch_factory=None, data_view_decode_fn=None)
    users, items = trainer.read_pairs(accessor, [os.path.join(transformed, "Split-train", "*")],
                                      transform_output)
    num_users = transform_output.vocabulary_size_by_name(features.USER_VOCAB)
    num_items = transform_output.vocabulary_size_by_name(features.PRODUCT_VOCAB)
    with open(config.catalog_uri) as f:
        catalog_size = sum(1 for line in f if line.strip())
    eval_rows = pq.read_table(os.path.join(config.data_dir, configs.EVAL_FILE)).to_pydict()
    eval_users = np.array(eval_rows[features.USER_KEY], dtype=object)
    eval_items = np.array(eval_rows[features.PRODUCT_KEY], dtype=np.int64)
    print(f"[quality] eval: {len(eval_users)} purchases by {len(set(eval_users))} users; "
          f"{num_items} products in the train vocabulary; catalog {catalog_size}", flush=True)

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        popularity = PopularityModel(num_users, num_items, items)
        served = export_and_load(popularity, transform_output, users, items, os.path.join(tmp, "pop"))
        rows[POPULAR] = ranking_metrics.measure(served, eval_users, eval_items, catalog_size)
        start = time.time()
        notebook = model_lib.Recommender(num_users, num_items, model_lib.NOTEBOOK)
        model_lib.train(notebook, users, items)
        print(f"[quality] notebook configuration trained in {time.time() - start:.0f} s", flush=True)
        served = export_and_load(notebook, transform_output, users, items, os.path.join(tmp, "nb"))
        rows["notebook configuration"] = ranking_metrics.measure(served, eval_users, eval_items, catalog_size)
        history = model_lib.build_user_history(users, items, num_users, num_items)
        for label, weights in references.TABLE_ROWS.items():
            reference = references.ReferenceModel(num_users, num_items, history, weights=weights)
            served = export_and_load(reference, transform_output, users, items,
                                     os.path.join(tmp, "ref"))
            rows[label] = ranking_metrics.measure(served, eval_users, eval_items, catalog_size)
    pushed = f"pushed ({os.path.basename(pushed_dir)})"
    rows[pushed] = ranking_metrics.measure(
        tf.saved_model.load(pushed_dir), eval_users, eval_items, catalog_size)

    names = list(next(iter(rows.values())))
    print("\n| model | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, values in rows.items():
        print(f"| {label} | " + " | ".join(f"{values[n]:.4f}" for n in names) + " |")
    print()
    for metric in ("HitRate@10", "NDCG@10"):
        se = rows[pushed][f"se {metric}"]
        for label in [POPULAR, *references.TABLE_ROWS]:
            margin = rows[pushed][metric] - rows[label][metric]
            verdict = "ahead by more than one standard error" if margin > se else "NOT ahead by one standard error"
            print(f"[quality] {metric}: pushed - {label} = {margin:+.4f} (one standard error "
                  f"{se:.4f}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
