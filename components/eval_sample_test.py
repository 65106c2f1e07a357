"""EvalSample's executor on generated purchases: the seeded sample of users, every purchase of
theirs and no other, the counts, the same users on every run (the pipeline with it:
tests/test_pipeline_eval_sample.py)."""

import glob
import os

import pytest
import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils, standard_artifacts

from components import eval_sample
from models import features
from pipeline import configs
from models.examples import purchase_examples

USERS = [f"user{i:016d}".encode() for i in range(50)]
PURCHASES = [(u, 2000000 + 7 * i + j) for i, u in enumerate(USERS) for j in range(1 + i % 3)]


def _examples(root):
    examples = standard_artifacts.Examples()
    examples.uri = str(root / "in")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    examples_utils.set_payload_format(examples, examples_utils.get_payload_format(examples))
    for split in ("train", "eval"):
        os.makedirs(root / "in" / f"Split-{split}")
        path = str(root / "in" / f"Split-{split}" / "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for record in purchase_examples([u for u, _ in PURCHASES], [p for _, p in PURCHASES]):
                writer.write(record)
    return examples


@pytest.fixture
def examples(tmp_path):
    return _examples(tmp_path)


def _run(examples, users, seed=0):
    root = os.path.dirname(examples.uri)
    out = standard_artifacts.Examples()
    out.uri = os.path.join(root, f"out-{users}-{seed}-{len(os.listdir(root))}")
    context = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=configs.local_beam_args(), tmp_dir=os.path.join(root, "tmp"), unique_id="1")
    eval_sample.Executor(context).Do({"examples": [examples]}, {"sampled": [out]},
                                     {"users": users, "seed": seed, "split": "eval"})
    files = glob.glob(os.path.join(out.uri, "Split-eval", "*.gz"))
    records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return out, [(eval_sample.user_of(r), tf.train.Example.FromString(r).features.feature[
        features.PRODUCT_KEY].int64_list.value[0]) for r in records]


def test_the_sample_is_every_purchase_of_the_users_with_the_smallest_keys(examples):
    out, kept = _run(examples, users=10)
    chosen = sorted(USERS, key=lambda u: eval_sample.user_key(u, 0))[:10]
    assert sorted(kept) == sorted(p for p in PURCHASES if p[0] in chosen)
    assert artifact_utils.decode_split_names(out.split_names) == ["eval"]
    assert examples_utils.get_payload_format(out) == examples_utils.get_payload_format(examples)
    props = {k: out.get_int_custom_property(k) for k in
             ("sampled_users", "eval_users", "sampled_purchases", "eval_purchases")}
    assert props == {"sampled_users": 10, "eval_users": 50, "sampled_purchases": len(kept),
                     "eval_purchases": len(PURCHASES)}


def test_the_same_seed_samples_the_same_users_another_seed_others(examples):
    def users(kept):
        return {u for u, _ in kept}

    first, again, other = (_run(examples, 10, seed)[1] for seed in (0, 0, 7))
    assert users(first) == users(again) and users(first) != users(other) and len(users(other)) == 10


def test_a_sample_larger_than_the_users_keeps_them_all(examples):
    out, kept = _run(examples, users=1000)
    assert sorted(kept) == sorted(PURCHASES) and out.get_int_custom_property("sampled_users") == 50


def test_no_users_is_refused_when_the_component_is_built():
    from tfx import types

    with pytest.raises(ValueError, match="users must be >= 1"):
        eval_sample.EvalSample(types.Channel(type=standard_artifacts.Examples), users=0)
