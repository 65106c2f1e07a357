"""preprocessing_fn through tft_beam on a tiny dataset: vocabularies and unseen ids."""

import os

import pytest
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam

from models import features, preprocessing

USERS = [b"AAAAAAAAAAAAAAAAAAA1", b"BBBBBBBBBBBBBBBBBBB2", b"AAAAAAAAAAAAAAAAAAA1",
         b"CCCCCCCCCCCCCCCCCCC3", b"AAAAAAAAAAAAAAAAAAA1"]
PRODUCTS = [2000002, 2000001, 2000001, 2000003, 2000001]


@pytest.fixture(scope="module")
def transformed(tmp_path_factory, curated_schema):
    metadata = tft.tf_metadata.dataset_metadata.DatasetMetadata(curated_schema)
    rows = [{features.USER_KEY: [u], features.PRODUCT_KEY: [p]} for u, p in zip(USERS, PRODUCTS)]
    unseen = [{features.USER_KEY: [b"ZZZZZZZZZZZZZZZZZZZ9"], features.PRODUCT_KEY: [2999999]}]
    temp = str(tmp_path_factory.mktemp("tft"))
    with tft_beam.Context(temp_dir=os.path.join(temp, "tmp"), force_tf_compat_v1=False):
        (train_out, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn)
        unseen_out, _ = ((unseen, metadata), transform_fn) | tft_beam.TransformDataset()
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(temp, "out"))
    return train_out, unseen_out, tft.TFTransformOutput(os.path.join(temp, "out"))


def test_vocabularies_are_named_and_ordered_by_frequency(transformed):
    _, _, output = transformed
    # 2000001 was bought three times; the two bought once follow (ties in TFT's own order)
    products = output.vocabulary_by_name(features.PRODUCT_VOCAB)
    assert products[0] == b"2000001" and sorted(products[1:]) == [b"2000002", b"2000003"]
    assert output.vocabulary_by_name(features.USER_VOCAB)[0] == b"AAAAAAAAAAAAAAAAAAA1"
    assert output.vocabulary_size_by_name(features.PRODUCT_VOCAB) == 3
    assert output.vocabulary_size_by_name(features.USER_VOCAB) == 3
    assert os.path.exists(output.vocabulary_file_by_name(features.PRODUCT_VOCAB))


def test_known_ids_map_to_their_vocabulary_index(transformed):
    train_out, _, output = transformed
    products = output.vocabulary_by_name(features.PRODUCT_VOCAB)
    users = output.vocabulary_by_name(features.USER_VOCAB)
    for row, user, product in zip(train_out, USERS, PRODUCTS):
        assert users[row[features.USER_INDEX]] == user
        assert products[row[features.PRODUCT_INDEX]] == str(product).encode()


def test_unseen_ids_map_to_the_oov_bucket(transformed):
    _, unseen_out, _ = transformed
    # vocabulary size 3, one OOV bucket: index 3, never -1 (which would break embedding lookups)
    assert unseen_out[0][features.USER_INDEX] == 3
    assert unseen_out[0][features.PRODUCT_INDEX] == 3
