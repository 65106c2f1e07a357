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
