"""End to end on generated data: ExampleGen → StatisticsGen/schema → StrictExampleValidator →
Transform → CatalogCheck, the outputs of each, ML Metadata's record, caching, and bad data."""

import json
import os

import pyarrow.parquet as pq
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from models import features
from pipeline import configs
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e
DATA_HALF = ["FileBasedExampleGen", "schema_importer", "StatisticsGen", "StrictExampleValidator",
             "Transform", "CatalogCheck"]


def _count(uri_glob: str) -> int:
    return sum(1 for f in tf.io.gfile.glob(uri_glob)
               for _ in tf.data.TFRecordDataset(f, compression_type="GZIP"))


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    data_dir = str(root / "data")
    fake_asos.write_fake_asos(data_dir)
    config = helpers.test_config(data_dir, str(root / "out"))
    helpers.run(config)
    first = helpers.executions(config)
    helpers.run(config)  # nothing changed: every component should come from the cache
    return config, first, helpers.executions(config)


def test_every_component_ran_once(good_run):
    _, first, _ = good_run
    for node in DATA_HALF:
        assert first.get(node) == ["COMPLETE"], (node, first)


def test_second_run_uses_the_cache(good_run):
    _, _, second = good_run
    for node in DATA_HALF:
        if node == "schema_importer":  # importers re-register their artifact: always COMPLETE
            continue
        assert second.get(node) == ["COMPLETE", "CACHED"], (node, second)


def test_splits_are_the_notebooks_files(good_run):
    config, _, _ = good_run
    [examples] = helpers.output_uris(config, "FileBasedExampleGen", "examples")
    for split, name in [("train", configs.TRAIN_FILE), ("eval", configs.EVAL_FILE)]:
        rows = pq.read_table(os.path.join(config.data_dir, name)).num_rows
        assert _count(os.path.join(examples, f"Split-{split}", "*.gz")) == rows


def test_statistics_and_anomalies(good_run):
    config, _, _ = good_run
    [stats] = helpers.output_uris(config, "StatisticsGen", "statistics")
    assert tf.io.gfile.exists(os.path.join(stats, "Split-train", "FeatureStats.pb"))
    [anomalies] = helpers.output_uris(config, "StrictExampleValidator", "anomalies")
    assert tf.io.gfile.exists(os.path.join(anomalies, "Split-eval", "SchemaDiff.pb"))


def test_transform_vocabularies_and_catalog_report(good_run):
    config, _, _ = good_run
    [graph] = helpers.output_uris(config, "Transform", "transform_graph")
    output = tft.TFTransformOutput(graph)
    train = pq.read_table(os.path.join(config.data_dir, configs.TRAIN_FILE)).to_pydict()
    assert output.vocabulary_size_by_name(features.USER_VOCAB) == len(set(train[features.USER_KEY]))
    assert output.vocabulary_size_by_name(features.PRODUCT_VOCAB) == len(set(train[features.PRODUCT_KEY]))
    [report_dir] = helpers.output_uris(config, "CatalogCheck", "catalog_report")
    with open(os.path.join(report_dir, "report.json")) as f:
        report = json.load(f)
    with open(os.path.join(config.data_dir, configs.CATALOG_FILE)) as f:
        catalog = {int(line) for line in f}
    never_bought = catalog - set(train[features.PRODUCT_KEY])
    assert len(never_bought) >= 5  # write_fake_asos lists at least 5 products nobody bought
    assert report["catalog_products_not_in_vocabulary"] == len(never_bought)
    assert report["vocabulary_products_not_in_catalog"] == 0


def _bad_data(tmp_path, users, products):
    data_dir = str(tmp_path / "data")
    fake_asos.write_fake_asos(data_dir)
    fake_asos.write_purchases(os.path.join(data_dir, configs.EVAL_FILE), users, products)
    return helpers.test_config(data_dir, str(tmp_path / "out"))


def test_bad_data_stops_the_pipeline_before_transform(tmp_path):
    # eval rows: one product id outside the catalog's range, one malformed user id
    config = _bad_data(tmp_path, ["aB3dE5fG7hJ9kL1mN3pQ", "not-a-user-id"], [123123, 2000000])
    with pytest.raises(Exception) as raised:
        helpers.run(config)
    message = str(raised.value)
    assert "split 'eval', feature 'productId': Out-of-range values" in message, message
    assert "split 'eval', feature 'dummyUserId': 1 value(s) do not match" in message, message
    assert "not-a-user-id" in message
    ran = helpers.executions(config)
    assert ran["StrictExampleValidator"] == ["FAILED"]
    for downstream in ("Transform", "CatalogCheck"):
        assert downstream not in ran, ran
    [report] = tf.io.gfile.glob(os.path.join(config.pipeline_root, "StrictExampleValidator",
                                             "rejected", "*", "anomalies_in_plain_words.txt"))
    with open(report) as f:
        assert "not-a-user-id" in f.read()  # kept for the user although TFX drops failed outputs
    assert tf.io.gfile.glob(os.path.join(os.path.dirname(report), "Split-eval", "SchemaDiff.pb"))


def test_catalog_missing_a_bought_product_stops_before_training(tmp_path):
    data_dir = str(tmp_path / "data")
    fake_asos.write_fake_asos(data_dir)
    catalog = os.path.join(data_dir, configs.CATALOG_FILE)
    with open(catalog) as f:
        lines = f.readlines()
    with open(catalog, "w") as f:
        f.writelines(lines[1:])  # the first line is a product that sells
    config = helpers.test_config(data_dir, str(tmp_path / "out"))
    with pytest.raises(Exception, match="1 product\\(s\\) bought in train are not in the catalog"):
        helpers.run(config)
    assert helpers.executions(config)["CatalogCheck"] == ["FAILED"]
