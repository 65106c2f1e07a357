"""StrictExampleValidator's minimum rows per split."""

from components import validator


def test_an_empty_or_tiny_split_is_named_with_its_count_and_minimum():
    problems = validator.too_few_rows({"train": 5000, "eval": 3}, {"train": 100, "eval": 20})
    assert problems == ["split 'eval': 3 rows, fewer than the 20 required "
                        "(min_split_rows in pipeline/configs.py)"]
    assert validator.too_few_rows({"train": 5000}, {"eval": 1})[0].startswith("split 'eval': 0 rows")


def test_enough_rows_pass():
    assert validator.too_few_rows({"train": 100, "eval": 20}, {"train": 100, "eval": 20}) == []
    assert validator.too_few_rows({"train": 1}, {}) == []


def test_rows_without_a_value_are_counted_in_plain_words():
    import pandas as pd
    import tensorflow_data_validation as tfdv

    df = pd.DataFrame({"dummyUserId": [b"a" * 20, b"b" * 20, None, b"c" * 20],
                       "productId": [1864055, 1864056, 1864056, 1864057]})
    statistics = tfdv.generate_statistics_from_dataframe(df, n_jobs=1)
    assert validator.missing_values("eval", statistics) == [
        ("split 'eval', feature 'dummyUserId': 1 of 4 rows have no value (null or missing); "
         "every row needs exactly one", "dummyUserId")]
    assert validator.missing_values("eval", statistics, {"productId"}) == []  # not flagged by TFDV
    complete = tfdv.generate_statistics_from_dataframe(df.fillna(b"d" * 20), n_jobs=1)
    assert validator.missing_values("eval", complete) == []


def test_with_spans_the_message_says_where_each_split_came_from(tmp_path, write_fake_spans):
    import json
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq
    from tfx.types import standard_artifacts

    from components import parquet_example_gen as gen
    from pipeline import configs

    folders = write_fake_spans(str(tmp_path / "data"), num_spans=3, rows_per_span=100)
    train = {n: [os.path.join(folder, configs.TRAIN_FILE)] for n, folder in folders.items()}
    table = pq.read_table(train[3][0])
    pq.write_table(pa.concat_tables([table, table.slice(0, 1).set_column(
        table.schema.get_field_index("dummyUserId"), "dummyUserId", pa.array([b"bad id!"], pa.binary()))]),
        train[3][0])
    examples = standard_artifacts.Examples()
    examples.set_string_custom_property(gen.FINGERPRINT_PROPERTY, "split:train,num_files:0,total_bytes:0 "
                                        "split:span_train,num_files:3,total_bytes:9")
    examples.set_string_custom_property(gen.WINDOW_SPANS_PROPERTY, "2,3")
    examples.set_string_custom_property(gen.EVAL_SOURCE_PROPERTY, "span-3")
    examples.set_string_custom_property(gen.SPAN_TRAIN_FILES_PROPERTY, json.dumps({str(n): train[n] for n in train}))
    files = validator.window_files(examples)
    assert list(files) == ["span-2", "span-3"]  # the window, not the previous span
    assert validator.spans_holding(["bad id!"], "dummyUserId", files) == ["span-3"]
    assert validator.spans_holding(["nowhere"], "dummyUserId", files) == []
    # a span with a null product (found by exploratory testing: the null was not traced to its span)
    table = pq.read_table(train[2][0])
    column = table.schema.get_field_index("productId")
    pq.write_table(table.set_column(column, "productId", pa.array(
        [None] + table.column(column).to_pylist()[1:], table.schema.field(column).type)), train[2][0])
    assert validator.spans_lacking("productId", files) == ["span-2"]
    assert validator.spans_lacking("dummyUserId", files) == []
    assert validator.where_from(examples) == "split 'train' holds span-2, span-3; split 'eval' is span-3's eval file"
    # the flat layout (train files at the top, none in span folders) says nothing more
    examples.set_string_custom_property(gen.FINGERPRINT_PROPERTY, "split:train,num_files:1,total_bytes:9 "
                                        "split:span_train,num_files:0,total_bytes:0")
    assert validator.window_files(examples) == {} and validator.where_from(examples) is None
