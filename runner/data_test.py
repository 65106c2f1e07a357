"""The input files: download when missing, checksums, and errors that name the file."""

import functools
import hashlib
import http.server
import os
import shutil
import threading

import pytest

from models import features
from pipeline import configs
from runner import data


@pytest.fixture
def published(tmp_path, fake_data_dir):
    """Generated files served over HTTP on loopback, as the public source would serve them."""
    source = tmp_path / "source"
    os.rename(fake_data_dir, source)
    checksums = {name: hashlib.sha256((source / name).read_bytes()).hexdigest() for name in configs.DATA_SHA256}
    sizes = {name: os.path.getsize(source / name) for name in checksums}
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(source))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", checksums, sizes, source
    server.shutdown()


def test_missing_files_are_downloaded_and_verified(tmp_path, published):
    url, checksums, sizes, _ = published
    target = tmp_path / "data"
    data.ensure_data(str(target), source_url=url, expected=checksums, sizes=sizes)
    assert sorted(os.listdir(target)) == sorted(checksums)
    for name, sha in checksums.items():
        assert data.sha256_of(str(target / name)) == sha


def test_only_missing_files_are_downloaded(tmp_path, published):
    url, checksums, sizes, source = published
    target = tmp_path / "data"
    target.mkdir()
    shutil.copy(source / configs.TRAIN_FILE, target / configs.TRAIN_FILE)
    os.remove(source / configs.TRAIN_FILE)  # a second download of it would fail
    data.ensure_data(str(target), source_url=url, expected=checksums, sizes=sizes)
    assert sorted(os.listdir(target)) == sorted(checksums)


def test_download_with_wrong_checksum_is_not_kept(tmp_path, published):
    url, checksums, sizes, _ = published
    wrong = dict(checksums, **{configs.CATALOG_FILE: "0" * 64})
    target = tmp_path / "data"
    with pytest.raises(data.DataError, match=f"{configs.CATALOG_FILE}: downloaded .* sha256"):
        data.ensure_data(str(target), source_url=url, expected=wrong, sizes=sizes)
    assert not (target / configs.CATALOG_FILE).exists()
    assert not [n for n in os.listdir(target) if n.startswith(".")]  # no partial file left


def test_unreachable_source_names_the_file(tmp_path):
    with pytest.raises(data.DataError, match=f"{configs.CATALOG_FILE}: download from http://127.0.0.1:9/.* failed"):
        data.ensure_data(str(tmp_path), source_url="http://127.0.0.1:9")


def test_truncated_file_is_reported(tmp_path, published):
    _, checksums, sizes, source = published
    with open(source / configs.TRAIN_FILE, "r+b") as f:
        f.truncate(100)
    with pytest.raises(data.DataError, match=f"{configs.TRAIN_FILE}: truncated \\(100 bytes"):
        data.ensure_data(str(source), expected=checksums, sizes=sizes)


def test_altered_file_is_reported(tmp_path, published):
    _, checksums, sizes, source = published
    with open(source / configs.EVAL_FILE, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(data.DataError, match=f"{configs.EVAL_FILE}: altered \\(sha256"):
        data.ensure_data(str(source), expected=checksums, sizes=sizes)


def test_own_data_is_said_before_anything_is_downloaded(tmp_path, published):
    """Found by exploratory testing: without --skip-checksums, a folder of one's own data lacking
    the catalog got the ASOS catalog downloaded into it, and only then did its train file fail
    its checksum (offline: a download error that never said --skip-checksums)."""
    url, checksums, sizes, source = published
    own = tmp_path / "own"
    own.mkdir()
    for name in (configs.TRAIN_FILE, configs.EVAL_FILE):
        (own / name).write_bytes((source / name).read_bytes() + b" of my own")
    with pytest.raises(data.DataError, match="altered .*pass --skip-checksums for data of your own"):
        data.ensure_data(str(own), source_url=url, expected=checksums, sizes=sizes)
    assert not (own / configs.CATALOG_FILE).exists()  # nothing downloaded into it


def test_own_data_needs_files_but_no_checksums(tmp_path, fake_data_dir):
    assert data.ensure_data(fake_data_dir, verify_checksums=False) == fake_data_dir
    os.remove(os.path.join(fake_data_dir, configs.CATALOG_FILE))
    with pytest.raises(data.DataError, match=f"^{configs.CATALOG_FILE}: missing in [^;]*\\(downloads"):
        data.ensure_data(fake_data_dir, verify_checksums=False)  # the users file is not named among others


def test_the_users_file_is_neither_needed_nor_downloaded(tmp_path, published):
    """ASOS's users file is read by nothing: data without it runs, with checksums or without,
    and nothing is fetched for it (found by a user adapting the pipeline, who had to make one)."""
    url, checksums, sizes, source = published
    assert not (source / configs.USERS_FILE).exists()  # the source has none: a download would fail
    assert data.ensure_data(str(tmp_path / "data"), source_url=url, expected=checksums, sizes=sizes)
    assert configs.USERS_FILE not in os.listdir(tmp_path / "data")
    own = tmp_path / "own"
    own.mkdir()
    for name in (configs.TRAIN_FILE, configs.EVAL_FILE, configs.CATALOG_FILE):
        shutil.copy(source / name, own / name)
    assert data.ensure_data(str(own), verify_checksums=False) == str(own)


@pytest.mark.skipif(not os.path.isdir(configs.SHARED_DATA_DIR), reason="no shared ASOS copy here")
def test_shared_asos_copy_matches_published_checksums():
    data.ensure_data(configs.SHARED_DATA_DIR)


def test_a_file_that_is_not_parquet_is_named(tmp_path, fake_data_dir):
    path = os.path.join(fake_data_dir, configs.EVAL_FILE)
    with open(path, "wb") as f:
        f.write(b"dummyUserId,productId\nabc,123\n")  # a CSV saved under the parquet name
    with pytest.raises(data.DataError) as error:
        data.ensure_data(fake_data_dir, verify_checksums=False)
    message = str(error.value)
    assert message.startswith(f"{configs.EVAL_FILE}: not a readable parquet file") and path in message


def test_a_stray_file_matching_a_split_pattern_is_checked_too(tmp_path, fake_data_dir):
    stray = os.path.join(fake_data_dir, "dsf_asos_train_extra.parquet")  # ExampleGen would read it
    with open(stray, "wb") as f:
        f.write(b"PAR1 not really")
    with pytest.raises(data.DataError, match="dsf_asos_train_extra.parquet: not a readable parquet"):
        data.ensure_data(fake_data_dir, verify_checksums=False)


def test_a_parquet_file_without_the_purchase_columns_is_named(tmp_path, fake_data_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"user": [b"x"], "productId": [1]}), os.path.join(fake_data_dir, configs.TRAIN_FILE))
    with pytest.raises(data.DataError, match=f"{configs.TRAIN_FILE}: no column {features.USER_KEY}"):
        data.ensure_data(fake_data_dir, verify_checksums=False)


def _rewrite(path, change):
    import pyarrow.parquet as pq

    pq.write_table(change(pq.read_table(path)), path)


@pytest.mark.parametrize("arrow_type, expected", [
    ("float64", "column productId is double, expected integer product ids (cast it to int64"),
    ("string", "column productId is string, expected integer product ids"),
])
def test_a_product_column_of_the_wrong_type_is_named(fake_data_dir, arrow_type, expected):
    """ExampleGen would stop with `Error encoding feature "productId": Bad field type`, exit 1."""
    path = os.path.join(fake_data_dir, configs.TRAIN_FILE)
    _rewrite(path, lambda t: t.set_column(1, features.PRODUCT_KEY, t.column(1).cast(arrow_type)))
    with pytest.raises(data.DataError) as error:
        data.ensure_data(fake_data_dir, verify_checksums=False)
    assert str(error.value).startswith(f"{configs.TRAIN_FILE}: {expected}")


def test_a_user_column_of_integers_is_named(fake_data_dir):
    import pyarrow as pa

    path = os.path.join(fake_data_dir, configs.EVAL_FILE)
    _rewrite(path, lambda t: t.set_column(0, features.USER_KEY, pa.array(range(len(t)), pa.int64())))
    with pytest.raises(data.DataError, match=f"{configs.EVAL_FILE}: column dummyUserId is int64, "
                                             "expected binary or string user ids"):
        data.ensure_data(fake_data_dir, verify_checksums=False)


def test_utf8_user_ids_and_int64_products_are_accepted(fake_data_dir):
    """pandas writes str columns as utf8 and ints as int64: both are purchases as ExampleGen reads them."""
    path = os.path.join(fake_data_dir, configs.TRAIN_FILE)
    _rewrite(path, lambda t: t.set_column(0, features.USER_KEY, t.column(0).cast("string"))
                              .set_column(1, features.PRODUCT_KEY, t.column(1).cast("int64")))
    data.ensure_data(fake_data_dir, verify_checksums=False)


def test_an_extra_column_is_named(fake_data_dir):
    """The curated schema knows two columns; ExampleGen would encode a third (and fail on a float)."""
    import pyarrow as pa

    path = os.path.join(fake_data_dir, configs.TRAIN_FILE)
    _rewrite(path, lambda t: t.append_column("price", pa.array([9.99] * len(t))))
    with pytest.raises(data.DataError, match=f"{configs.TRAIN_FILE}: column\\(s\\) \\['price'\\] not in the schema"):
        data.ensure_data(fake_data_dir, verify_checksums=False)


def test_damaged_data_pages_behind_an_intact_footer_are_named(fake_data_dir):
    """The footer (schema, row count) reads fine; the column chunks do not. ExampleGen would stop
    with `OSError: Invalid column metadata (corrupt file?)` and no file name."""
    path = os.path.join(fake_data_dir, configs.TRAIN_FILE)
    with open(path, "rb") as f:
        content = f.read()
    with open(path, "wb") as f:
        f.write(content[:100] + content[-(len(content) // 3):])
    with pytest.raises(data.DataError, match=f"{configs.TRAIN_FILE}: not a readable parquet file"):
        data.ensure_data(fake_data_dir, verify_checksums=False)


@pytest.mark.parametrize("text, expected", [
    ("product_id\n2000001\n", "line 1: 'product_id' is not an integer product id"),
    ("productId\n", "no product ids"),
    ("2000001\nabc\n", "line 2: 'abc' is not an integer"),
    (b"\xff\xfe2\x000\x00", "codec can't decode"),  # UTF-16 saved by a spreadsheet
])
def test_a_malformed_catalog_is_named_before_the_run(fake_data_dir, text, expected):
    """CatalogCheck would find it only after ExampleGen, StatisticsGen and Transform, with exit 1."""
    path = os.path.join(fake_data_dir, configs.CATALOG_FILE)
    with open(path, "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(data.DataError, match=f"^{configs.CATALOG_FILE}: .*{expected}"):
        data.ensure_data(fake_data_dir, verify_checksums=False)


def test_downloads_are_announced_on_the_console_channel(tmp_path, published, caplog):
    """A print() went to the run's log file only: a download of megabytes was silent."""
    import logging

    url, checksums, sizes, _ = published
    with caplog.at_level(logging.INFO, logger="recsys.data"):
        data.ensure_data(str(tmp_path / "data"), source_url=url, expected=checksums, sizes=sizes)
    announced = [r.getMessage() for r in caplog.records if r.name == "recsys.data"]
    assert sorted(announced) == sorted(f"[data] downloading {n} from {url}/{n}" for n in checksums)


def test_a_data_dir_that_cannot_be_created_is_named(tmp_path, published):
    url, checksums, sizes, _ = published
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "data"
    with pytest.raises(data.DataError, match=f"cannot be downloaded into {target}: .*Not a directory"):
        data.ensure_data(str(target), source_url=url, expected=checksums, sizes=sizes)


def _products(data_dir, name):
    import pyarrow.parquet as pq

    return pq.read_table(os.path.join(data_dir, name)).column(features.PRODUCT_KEY).to_pylist()


@pytest.mark.parametrize("name", [configs.EVAL_FILE, configs.TRAIN_FILE])
def test_purchases_of_products_outside_the_catalog_are_named(fake_data_dir, name):
    """Eval purchases of such products used to be evaluated as misses (the gate would refuse a good
    model); train ones were found by CatalogCheck only after Transform."""
    import pyarrow as pa

    path = os.path.join(fake_data_dir, name)
    _rewrite(path, lambda t: t.set_column(1, features.PRODUCT_KEY, pa.array(
        [1864055 if i < 3 else p for i, p in enumerate(t.column(1).to_pylist())], pa.int32())))
    with pytest.raises(data.DataError, match=f"^{name}: 3 of [0-9,]+ purchases are of products not in "
                                             f"the catalog {configs.CATALOG_FILE}, e.g. \\[1864055\\]"):
        data.ensure_data(fake_data_dir, verify_checksums=False)


def test_eval_users_and_products_unseen_in_train_are_said(fake_data_dir, caplog):
    import logging

    import pyarrow as pa

    catalog = open(os.path.join(fake_data_dir, configs.CATALOG_FILE)).read().split()
    never_bought = sorted(set(map(int, catalog)) - set(_products(fake_data_dir, configs.TRAIN_FILE)))
    path = os.path.join(fake_data_dir, configs.EVAL_FILE)
    _rewrite(path, lambda t: t.set_column(0, features.USER_KEY, pa.array(
        [b"A" * 20 if i == 0 else u for i, u in enumerate(t.column(0).to_pylist())], pa.binary()))
        .set_column(1, features.PRODUCT_KEY, pa.array(
            [never_bought[0] if i < 2 else p for i, p in enumerate(t.column(1).to_pylist())], pa.int32())))
    with caplog.at_level(logging.INFO, logger="recsys.data"):
        data.ensure_data(fake_data_dir, verify_checksums=False)
    said = [r.getMessage() for r in caplog.records if r.name == "recsys.data"]
    assert any(s.startswith("[data] eval: 1 of ") and " users never occur in train" in s for s in said), said
    assert any(s.startswith("[data] eval: 1 of ") and " products never occur in train" in s for s in said), said


def test_train_purchases_repeating_a_pair_are_said(fake_data_dir, caplog):
    """Found by exploratory testing: rows delivered many times (one pair 716 times) went unsaid."""
    import logging

    import pyarrow as pa

    path = os.path.join(fake_data_dir, configs.TRAIN_FILE)
    _rewrite(path, lambda t: pa.concat_tables([t, t.slice(0, 1), t.slice(0, 1), t.slice(1, 1)]))
    with caplog.at_level(logging.INFO, logger="recsys.data"):
        data.ensure_data(fake_data_dir, verify_checksums=False)
    said = [r.getMessage() for r in caplog.records if r.name == "recsys.data"]
    rows = pa.parquet.read_table(path).num_rows
    assert [s for s in said if "repeat a (user, product) pair" in s] == [
        f"[data] train: 3 of {rows:,} purchases ({300 / rows:.1f}%) repeat a (user, product) pair, one pair 3 "
        "times (bought again, or rows delivered twice? each row is a training example)"]


def test_the_generated_data_says_nothing(fake_data_dir, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="recsys.data"):
        data.ensure_data(fake_data_dir, verify_checksums=False)
    assert not [r for r in caplog.records if r.name == "recsys.data"]


def test_what_pandas_writes_is_accepted_or_named(fake_data_dir):
    """category columns (dictionaries) are purchases; a stored index is an extra column, with a hint."""
    import pandas as pd

    path = os.path.join(fake_data_dir, configs.TRAIN_FILE)
    frame = pd.read_parquet(path)
    frame[features.USER_KEY] = frame[features.USER_KEY].map(bytes.decode).astype("category")
    frame.to_parquet(path, index=False)
    data.ensure_data(fake_data_dir, verify_checksums=False)
    frame[frame.index % 2 == 0].to_parquet(path)  # a filtered frame: pandas stores its index
    with pytest.raises(data.DataError, match=r"\['__index_level_0__'\] not in the schema.*index=False"):
        data.ensure_data(fake_data_dir, verify_checksums=False)


def test_an_empty_frame_from_pandas_is_named_for_its_rows_not_its_null_column(fake_data_dir):
    """Found following the docs: pandas writes an empty object column as Arrow's null type, which
    ExampleGen refuses (`Bad field type`); the check said "column dummyUserId is null", not why."""
    import pandas as pd
    import pyarrow as pa

    path = os.path.join(fake_data_dir, configs.EVAL_FILE)
    pd.read_parquet(path).iloc[:0].to_parquet(path, index=False)
    with pytest.raises(data.DataError, match=f"{configs.EVAL_FILE}: no rows \\(column dummyUserId is null, the "
                                             "type pandas gives an empty column\\), at "):
        data.ensure_data(fake_data_dir, verify_checksums=False)
    _rewrite(path, lambda t: pa.table({features.USER_KEY: pa.nulls(3), features.PRODUCT_KEY: pa.array([1, 2, 3])}))
    with pytest.raises(data.DataError, match="column dummyUserId has no value in any of its 3 rows"):
        data.ensure_data(fake_data_dir, verify_checksums=False)


def test_a_split_of_several_files_is_said(fake_data_dir, caplog):
    """ExampleGen reads every file matching the split's pattern: a copy left beside the train file
    would be trained on too, silently."""
    import logging

    shutil.copy(os.path.join(fake_data_dir, configs.TRAIN_FILE),
                os.path.join(fake_data_dir, "dsf_asos_train_copy.parquet"))
    with caplog.at_level(logging.INFO, logger="recsys.data"):
        data.ensure_data(fake_data_dir, verify_checksums=False)
    said = [r.getMessage() for r in caplog.records if r.name == "recsys.data"]
    assert said[0] == f"[data] split 'train' reads 2 files: dsf_asos_train_copy.parquet, {configs.TRAIN_FILE}"
    assert said[1].startswith("[data] train: ") and "purchases (50.0%) repeat a (user, product) pair" in said[1]
    assert len(said) == 2


def test_files_under_other_names_are_listed(tmp_path, fake_data_dir):
    os.rename(os.path.join(fake_data_dir, configs.TRAIN_FILE), os.path.join(fake_data_dir, "train.parquet"))
    with pytest.raises(data.DataError, match=f"{configs.TRAIN_FILE}: missing in {fake_data_dir}; it has "
                                             "train.parquet: the files must have the ASOS names"):
        data.ensure_data(fake_data_dir, verify_checksums=False)
    with pytest.raises(data.DataError, match=f"{tmp_path / 'nowhere'}: no such directory"):
        data.ensure_data(str(tmp_path / "nowhere"), verify_checksums=False)


def test_a_file_that_is_a_directory_is_named(fake_data_dir):
    """A parquet dataset written in parts (Spark) is a directory: said so, not 'missing'."""
    train = os.path.join(fake_data_dir, configs.TRAIN_FILE)
    os.rename(train, train + ".part")
    os.makedirs(train)
    os.rename(train + ".part", os.path.join(train, "part-00000.parquet"))
    with pytest.raises(data.DataError, match=f"{configs.TRAIN_FILE}: a directory in {fake_data_dir}, not a file"):
        data.ensure_data(fake_data_dir, verify_checksums=False)


# --- spans (components/spans.py) ----------------------------------------------------------------
def test_a_span_layout_is_checked_and_said(tmp_path, caplog, write_fake_spans):
    import logging

    data_dir = str(tmp_path / "data")
    write_fake_spans(data_dir, num_spans=3, span_eval=(3,))
    with caplog.at_level(logging.INFO, logger="recsys.data"):
        assert data.ensure_data(data_dir, verify_checksums=False, span_window=2) == data_dir
    said = [r.getMessage() for r in caplog.records if r.name == "recsys.data"]
    assert said[0] == ("[data] 3 span(s) (span-1, span-2, span-3); newest span-3 (span 3); training window 2 "
                       "of at most 2: span-2, span-3; eval: the eval file of span-3/; drift: span-3 vs span-2")
    assert sorted(data.check_split_files(data_dir, 2)) == [
        f"span-2/{configs.TRAIN_FILE}", f"span-3/{configs.TRAIN_FILE}", f"span-3/{configs.EVAL_FILE}"]
    # a window of one: the previous span is read by the drift gate, so it is checked too
    assert f"span-2/{configs.TRAIN_FILE}" in data.check_split_files(data_dir, 1)


def test_a_malformed_span_layout_is_one_line(tmp_path, write_fake_spans):
    data_dir = str(tmp_path / "data")
    write_fake_spans(data_dir, num_spans=2)
    shutil.copy(os.path.join(data_dir, "span-1", configs.TRAIN_FILE), os.path.join(data_dir, configs.TRAIN_FILE))
    with pytest.raises(data.DataError, match="flat and span layouts mixed: dsf_asos_train_.* beside span "
                                             r"folders \(span-1/, span-2/\)"):
        data.ensure_data(data_dir, verify_checksums=False)
    os.remove(os.path.join(data_dir, configs.TRAIN_FILE))
    os.remove(os.path.join(data_dir, "span-2", configs.TRAIN_FILE))
    with pytest.raises(data.DataError, match="span-2/: no train file"):
        data.ensure_data(data_dir, verify_checksums=False)


def test_spans_whose_id_columns_have_other_accepted_types_pass(tmp_path, write_fake_spans):
    """Found by exploratory testing: span-1 with int32 products and string users beside span-2 with
    int64 products and binary users (each type accepted) ended the run with `ArrowInvalid: Schema
    at index 1 was different` (exit 1) while the repeated pairs were counted."""
    import pyarrow as pa

    data_dir = str(tmp_path / "data")
    folders = write_fake_spans(data_dir, num_spans=2)
    _rewrite(os.path.join(folders[1], configs.TRAIN_FILE), lambda t: pa.table({
        features.USER_KEY: t.column(features.USER_KEY).cast(pa.string()),
        features.PRODUCT_KEY: t.column(features.PRODUCT_KEY).cast(pa.int32())}))
    _rewrite(os.path.join(folders[2], configs.TRAIN_FILE), lambda t: pa.table({
        features.USER_KEY: t.column(features.USER_KEY).cast(pa.binary()),
        features.PRODUCT_KEY: t.column(features.PRODUCT_KEY).cast(pa.int64())}))
    assert data.ensure_data(data_dir, verify_checksums=False) == data_dir


def test_a_newest_span_without_rows_is_refused_before_the_drift_gate(tmp_path, write_fake_spans):
    data_dir = str(tmp_path / "data")
    folders = write_fake_spans(data_dir, num_spans=2)
    _rewrite(os.path.join(folders[2], configs.TRAIN_FILE), lambda t: t.slice(0, 0))  # typed columns, no rows
    with pytest.raises(data.DataError, match=r"span-2/: its train file has no rows: an empty span is nothing"):
        data.ensure_data(data_dir, verify_checksums=False)


def test_a_bad_file_in_a_span_is_named_with_its_folder(tmp_path, write_fake_spans):
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir = str(tmp_path / "data")
    folders = write_fake_spans(data_dir, num_spans=2)
    unknown = pa.table({features.USER_KEY: pa.array([b"a" * 20], pa.binary()),  # product 1: not in the catalog
                        features.PRODUCT_KEY: pa.array([1], pa.int32())})
    pq.write_table(unknown, os.path.join(folders[2], configs.TRAIN_FILE))
    with pytest.raises(data.DataError, match=f"span-2/{configs.TRAIN_FILE}: 1 of 1 purchases are of products "
                                             "not in the catalog"):
        data.ensure_data(data_dir, verify_checksums=False)


def test_the_catalog_of_a_span_layout_is_downloaded_and_verified(tmp_path, published):
    url, checksums, sizes, source = published
    target = tmp_path / "data" / "span-1"
    os.makedirs(target)
    shutil.copy(source / configs.TRAIN_FILE, target / configs.TRAIN_FILE)
    shutil.copy(source / configs.EVAL_FILE, tmp_path / "data" / configs.EVAL_FILE)  # the standing eval file
    data.ensure_data(str(tmp_path / "data"), source_url=url, expected=checksums, sizes=sizes)
    assert sorted(os.listdir(tmp_path / "data")) == sorted(
        [configs.CATALOG_FILE, configs.EVAL_FILE, "span-1"])  # no train file at the top, no users file
    with open(tmp_path / "data" / configs.EVAL_FILE, "ab") as f:
        f.write(b"altered")
    with pytest.raises(data.DataError, match=f"{configs.EVAL_FILE}: altered"):
        data.ensure_data(str(tmp_path / "data"), source_url=url, expected=checksums, sizes=sizes)


@pytest.mark.parametrize("target", ["missing", "a-file"])
def test_a_data_dir_that_is_a_broken_link_names_the_link_and_its_target(tmp_path, target):
    """Found by exploratory testing: data/asos linked to a folder that was not there made the
    default data dir the shared copy, and a run trained on other data, without a word."""
    (tmp_path / "a-file").write_text("x")
    link = tmp_path / "asos"
    link.symlink_to(target)
    with pytest.raises(data.DataError) as e:
        data.ensure_data(str(link), verify_checksums=False)
    state = "is a file" if target == "a-file" else "does not exist"
    assert str(e.value).startswith(f"{link} is a symbolic link to {target} ({tmp_path / target}), which {state}")


def test_the_default_data_dir_is_a_linked_data_asos_even_when_its_target_is_missing(tmp_path, monkeypatch):
    clone_data, shared = tmp_path / "clone" / "data" / "asos", tmp_path / "shared" / "data" / "asos"
    shared.mkdir(parents=True)
    monkeypatch.setattr(configs, "DEFAULT_DATA_DIR", str(clone_data))
    monkeypatch.setattr(configs, "SHARED_DATA_DIR", str(shared))
    assert configs.default_data_dir() == str(shared)  # no data/asos: the shared copy
    clone_data.parent.mkdir(parents=True)
    clone_data.symlink_to(tmp_path / "srv" / "spans")  # not there (or not visible)
    assert configs.default_data_dir() == str(clone_data)  # never the shared copy in its place
    (tmp_path / "srv" / "spans").mkdir(parents=True)
    assert configs.default_data_dir() == str(clone_data)
