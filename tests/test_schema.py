"""The curated schema against good and bad rows, validated as the pipeline does it: TFDV
statistics of tf.Examples against schema/schema.pbtxt, plus the validator's id-pattern check.
(This test lives in tests/: the schema Importer needs schema/ to hold the one file.)"""

import os

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from apache_beam.options.pipeline_options import PipelineOptions
from tfx.utils import io_utils

from components import validator
from models import features
from pipeline import configs

GOOD_USER = "aB3dE5fG7hJ9kL1mN3pQ"
SCHEMA = io_utils.SchemaReader().read(os.path.join(configs.SCHEMA_DIR, "schema.pbtxt"))


def _example(user=GOOD_USER, product=2000000, extra=None) -> tf.train.Example:
    values = {}
    if user is not None:
        values[features.USER_KEY] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[user.encode()]))
    if isinstance(product, int):
        values[features.PRODUCT_KEY] = tf.train.Feature(int64_list=tf.train.Int64List(value=[product]))
    elif isinstance(product, str):
        values[features.PRODUCT_KEY] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[product.encode()]))
    values.update(extra or {})
    return tf.train.Example(features=tf.train.Features(feature=values))


def _validate(tmp_path, examples):
    """(TFDV anomalies by feature, id-pattern violations by feature) for these rows."""
    path = str(tmp_path / "examples.tfrecord.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as w:
        for e in examples:
            w.write(e.SerializeToString())
    stats = tfdv.generate_statistics_from_tfrecord(  # output_path: else a folder left in /tmp
        path, output_path=str(tmp_path / "stats.tfrecord"),
        pipeline_options=PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=in_memory"]))
    anomalies = tfdv.validate_statistics(stats, SCHEMA)
    return dict(anomalies.anomaly_info), validator.find_pattern_violations([path], validator.id_patterns(SCHEMA))


def test_good_rows_pass(tmp_path):
    anomalies, violations = _validate(tmp_path, [_example(), _example(product=13881282),
                                                 _example(user="Z" * 20, product=1864055)])
    assert anomalies == {} and violations == {}


@pytest.mark.parametrize("rows, feature, short_description", [
    ([_example(), _example(product=None)], features.PRODUCT_KEY, "Column dropped"),
    ([_example(), _example(product=123123)], features.PRODUCT_KEY, "Out-of-range values"),
    # a parquet column has one type: string product ids come as a whole column
    ([_example(product="2000000"), _example(product="2000001")], features.PRODUCT_KEY, "Unexpected data type"),
    ([_example(), _example(user=None)], features.USER_KEY, "Column dropped"),
    ([_example(extra={"price": tf.train.Feature(int64_list=tf.train.Int64List(value=[3]))})], "price", "New column"),
])
def test_bad_rows_are_anomalies(tmp_path, rows, feature, short_description):
    anomalies, _ = _validate(tmp_path, rows)
    assert feature in anomalies, anomalies
    descriptions = [r.short_description for r in anomalies[feature].reason]
    assert any(short_description in d for d in descriptions), descriptions


@pytest.mark.parametrize("bad_user", ["aB3dE5fG7hJ9kL1mN3p", "aB3dE5fG7hJ9kL1mN3pQ7", "aB3dE5fG7hJ9kL1mN3-Q", ""])
def test_user_ids_must_be_20_ascii_letters_or_digits(tmp_path, bad_user):
    _, violations = _validate(tmp_path, [_example(), _example(user=bad_user)])
    assert violations == {features.USER_KEY: ([bad_user], 1)}


def test_schema_states_the_rules():
    by_name = {f.name: f for f in SCHEMA.feature}
    assert set(by_name) == {features.USER_KEY, features.PRODUCT_KEY}
    for f in by_name.values():
        assert f.presence.min_fraction == 1.0 and [d.size for d in f.shape.dim] == [1]
    catalog = os.path.join(configs.SHARED_DATA_DIR, configs.CATALOG_FILE)
    if os.path.exists(catalog):  # the range is the real catalog's
        with open(catalog) as f:
            ids = [int(line) for line in f if line.strip()]
        domain = by_name[features.PRODUCT_KEY].int_domain
        assert (domain.min, domain.max) == (min(ids), max(ids))
