"""CatalogCheck: the catalog file's parsing and its comparison with the product vocabulary."""

import pytest

from components import catalog_check


def test_read_catalog_skips_blank_lines(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text("2000001\n\n 2000002 \n2000003\n")
    assert catalog_check.read_catalog(str(path)) == [2000001, 2000002, 2000003]


def test_read_catalog_names_the_first_bad_line(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text("2000001\nproduct-2\n2000003\n")
    with pytest.raises(ValueError, match=r"catalog.csv, line 2: 'product-2' is not an integer"):
        catalog_check.read_catalog(str(path))


def test_compare_counts_both_directions():
    report = catalog_check.compare(vocabulary=[1, 2, 3, 7], catalog=[1, 2, 3, 4, 5, 5])
    assert report["catalog_products"] == 5
    assert report["vocabulary_products"] == 4
    assert report["catalog_products_not_in_vocabulary"] == 2  # never bought: 4, 5
    assert report["catalog_products_not_in_vocabulary_sample"] == [4, 5]
    assert report["vocabulary_products_not_in_catalog"] == 1  # bought, not in the catalog: 7
    assert report["vocabulary_products_not_in_catalog_sample"] == [7]


def test_compare_samples_are_bounded():
    report = catalog_check.compare(vocabulary=list(range(100)), catalog=[])
    assert report["vocabulary_products_not_in_catalog"] == 100
    assert len(report["vocabulary_products_not_in_catalog_sample"]) == catalog_check.SAMPLE_SIZE


def test_read_catalog_takes_the_header_pandas_writes(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text("productId\n2000001\n2000002\n")
    assert catalog_check.read_catalog(str(path)) == [2000001, 2000002]


@pytest.mark.parametrize("text, expected", [
    ("product_id\n2000001\n",
     "line 1: 'product_id' is not an integer product id \\(a header line may only be 'productId'\\)"),
    ("productId\n", "no product ids"),
    ("", "no product ids"),
    ("2000001\n2000002.0\n", "line 2: '2000002.0' is not an integer"),
])
def test_read_catalog_names_what_is_wrong(tmp_path, text, expected):
    path = tmp_path / "catalog.csv"
    path.write_text(text)
    with pytest.raises(catalog_check.CatalogFormatError, match=expected):
        catalog_check.read_catalog(str(path))


def test_the_console_line_says_the_counts_and_the_products_never_bought_in_few_words():
    """Found by exploratory testing: the line was 115 columns on the ASOS data, 174 with products
    never bought; the console fits what is still longer (runner/console.py fit_text)."""
    from runner import console

    every = catalog_check.summary_text(catalog_check.compare(vocabulary=list(range(29_696)),
                                                             catalog=list(range(29_696))))
    assert every == "29,696 catalog products, 29,696 in the train vocabulary: each was bought in train"
    assert len(f"[catalog] {every}") <= console.WIDTH
    ids = list(range(2_000_000, 2_030_000))
    some = catalog_check.summary_text(catalog_check.compare(vocabulary=ids[304:], catalog=ids))
    assert some == ("30,000 catalog products, 29,696 in the train vocabulary: 304 never bought in train cannot be "
                    "recommended (e.g. 2000000, 2000001, 2000002, 2000003, 2000004)")
    assert console.fit_text(f"[catalog] {some}") == [
        "[catalog] 30,000 catalog products, 29,696 in the train vocabulary: 304 never bought in train cannot",
        "          be recommended (e.g. 2000000, 2000001, 2000002, 2000003, 2000004)"]
