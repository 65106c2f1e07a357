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
        "split 'eval', feature 'dummyUserId': 1 of 4 rows have no value (null or missing); "
        "every row needs exactly one"]
    assert validator.missing_values("eval", statistics, {"productId"}) == []  # not flagged by TFDV
    complete = tfdv.generate_statistics_from_dataframe(df.fillna(b"d" * 20), n_jobs=1)
    assert validator.missing_values("eval", complete) == []
