"""The ASOS input files: found in a directory, downloaded from their public source when missing,
and checked against their published sha256 before the pipeline reads them."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from typing import Dict, List, Optional

from components import spans
from models import features
from pipeline import configs

# Sizes in bytes of the published files: tell a truncated download from an altered one.
DATA_SIZES = {
    configs.CATALOG_FILE: 260128,
    configs.TRAIN_FILE: 1731830,
    configs.EVAL_FILE: 624280,
}


# The console shows this logger's lines (runner/console.py); a print() would go to the log only.
progress = logging.getLogger("recsys.data")


class DataError(RuntimeError):
    """An input file is missing, truncated or altered; the message names the file."""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: str, expected_sha256: str, expected_size: Optional[int] = None) -> None:
    """Raises DataError saying what is wrong with `path`, if anything."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise DataError(f"{name}: missing (looked for {path})")
    size = os.path.getsize(path)
    if expected_size is not None and size < expected_size:
        raise DataError(f"{name}: truncated ({size} bytes, expected {expected_size}) at {path}")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise DataError(
            f"{name}: altered (sha256 {actual}, expected {expected_sha256}) at {path}; "
            "delete it to download it again, or pass --skip-checksums for data of your own")


def _column_type_problem(column: str, arrow_type, rows: int) -> Optional[str]:
    """Why ExampleGen cannot encode `column` of this Arrow type as the schema's feature, or None."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):  # pandas' category dtype: ExampleGen decodes it
        arrow_type = arrow_type.value_type
    if pa.types.is_null(arrow_type):  # pandas writes an object column without a value so
        return f"column {column} has no value in any of its {rows:,} rows"
    if column == features.USER_KEY:
        if (pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
                or pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)):
            return None
        return (f"column {column} is {arrow_type}, expected binary or string user ids (write them as strings; "
                "the curated schema, schema/schema.pbtxt, says what they look like: 20 letters and digits)")
    if column == features.PRODUCT_KEY:
        if pa.types.is_integer(arrow_type) and arrow_type != pa.uint64():
            return None
        hint = " (cast it to int64 if the values are whole numbers)" if (
            pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type)
            or pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)) else ""
        return f"column {column} is {arrow_type}, expected integer product ids{hint}"
    return None


def check_parquet(path: str) -> int:
    """Raises DataError naming `path` unless it is a parquet file with exactly the purchase
    columns, of types ExampleGen can encode, whose data reads back whole; returns its row count.
    (ExampleGen would stop with `ArrowInvalid: Parquet magic bytes not found in footer`, `Bad
    field type` or `Invalid column metadata`, and no file name.)"""
    import pyarrow
    import pyarrow.parquet as pq

    name = os.path.basename(path)
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pyarrow.ArrowException, OSError) as e:
        raise DataError(f"{name}: not a readable parquet file ({e}) at {path}") from e
    columns = list(schema.names)
    expected = [features.USER_KEY, features.PRODUCT_KEY]
    missing = [c for c in expected if c not in columns]
    if missing:
        raise DataError(f"{name}: no column {', '.join(missing)} (columns: {sorted(columns)}) at {path}: name the "
                        f"user column {features.USER_KEY} and the product column {features.PRODUCT_KEY} (the "
                        "names are models/features.py's and the curated schema's, schema/schema.pbtxt)")
    extra = [c for c in columns if c not in expected]
    if extra:  # ExampleGen would encode them and the curated schema does not know them
        hint = " (pandas' index: write with to_parquet(..., index=False))" if any(
            c.startswith("__index_level_") for c in extra) else ""
        raise DataError(f"{name}: column(s) {extra} not in the schema (schema/schema.pbtxt has "
                        f"{', '.join(expected)} only); drop them from the file{hint}, at {path}")
    rows = parquet.metadata.num_rows
    untyped = [c for c in expected if pyarrow.types.is_null(schema.field(c).type)]
    if untyped and rows == 0:  # ExampleGen refuses the type even with no rows: the rows are the news
        raise DataError(f"{name}: no rows (column {', '.join(untyped)} is null, the type pandas gives "
                        f"an empty column), at {path}")
    problems = [p for p in (_column_type_problem(c, schema.field(c).type, rows) for c in expected) if p]
    if problems:
        raise DataError(f"{name}: {'; '.join(problems)}, at {path}")
    try:  # the data pages too: a damaged file can have an intact footer
        for batch in parquet.iter_batches(batch_size=65536):
            del batch
    except (pyarrow.ArrowException, OSError) as e:
        raise DataError(f"{name}: not a readable parquet file ({e}) at {path}") from e
    return rows


def read_layout(data_dir: str) -> spans.Layout:
    """The data directory's layout (components/spans.py: flat, or one folder per span);
    DataError naming what is malformed."""
    try:
        return spans.read_layout(data_dir, configs.SPLIT_PATTERNS["train"], configs.SPLIT_PATTERNS["eval"])
    except spans.SpanLayoutError as e:
        raise DataError(str(e)) from None


def selection(data_dir: str, span_window: int = configs.DEFAULT_SPAN_WINDOW) -> spans.Selection:
    """What a run reads (ExampleGen's executor resolves the same): the newest span, the window,
    the eval files, the previous span; DataError naming what is missing or malformed."""
    try:
        return read_layout(data_dir).select(span_window)
    except spans.SpanLayoutError as e:
        raise DataError(str(e)) from None


def split_files(data_dir: str, span_window: int = configs.DEFAULT_SPAN_WINDOW) -> Dict[str, List[str]]:
    """{split: the paths ExampleGen will read for it} (train: the window's train files, eval:
    the newest span's eval files or the standing ones), and, when the previous span is outside
    the window, "previous": its train files, which the drift gate reads. DataError for a
    malformed layout or a split without a file."""
    chosen = selection(data_dir, span_window)
    files = {"train": chosen.train_files, "eval": list(chosen.eval_files)}
    if chosen.previous is not None and chosen.previous not in chosen.window:
        files["previous"] = list(chosen.previous.train)
    return files


def check_split_files(data_dir: str, span_window: int = configs.DEFAULT_SPAN_WINDOW) -> Dict[str, int]:
    """Every file a run will read (`split_files`) must be parquet with the purchase columns;
    returns {file path relative to the data directory: rows}."""
    layout = read_layout(data_dir)
    chosen = selection(data_dir, span_window)
    if not layout.flat:
        progress.info("[data] %s", spans.describe(layout, chosen, span_window))
    several = [(span.folder, "train", span.train) for span in chosen.window if len(span.train) > 1]
    if len(chosen.eval_files) > 1:
        several.append((chosen.eval_source if chosen.eval_source != spans.STANDING else "", "eval",
                        chosen.eval_files))
    for folder, split, paths in several:  # all are read: a stray copy would be trained on twice
        where = f"{folder}/ " if folder else ""
        progress.info("[data] %ssplit '%s' reads %d files: %s", where, split, len(paths),
                      ", ".join(os.path.basename(p) for p in paths))
    rows = {}
    for paths in split_files(data_dir, span_window).values():
        rows.update((os.path.relpath(path, data_dir), check_parquet(path)) for path in paths)
    newest = chosen.window[-1]
    if not layout.flat and not sum(rows[os.path.relpath(p, data_dir)] for p in newest.train):
        # found by exploratory testing: the drift gate called it drifted and offered --accept-drift
        raise DataError(spans.empty_span_text(newest.folder, len(newest.train)))
    return rows


def read_column(paths: List[str], column: str, arrow_type):
    """One column of parquet files, cast to one type per file: span files may differ (int32 or
    int64 products, binary or string users), each accepted."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.chunked_array([pq.read_table(p, columns=[column]).column(0).cast(arrow_type) for p in paths],
                            type=arrow_type)


def check_purchases_in_catalog(data_dir: str, catalog: List[int],
                               span_window: int = configs.DEFAULT_SPAN_WINDOW) -> None:
    """Raises DataError naming the first purchase file (of those a run reads) with products the
    catalog does not list.

    CatalogCheck finds such train products after Transform (and on Vertex); an eval purchase of a
    product outside the catalog it never sees: the model cannot recommend it, so the gate would
    refuse a good model for the data's fault. Also says on the console how many eval users and
    products never occur in train (legitimate, but they can only be answered with the popular
    products)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def read(paths, column, arrow_type):
        return read_column(paths, column, arrow_type).drop_null()  # nulls: the validator's to name

    known = pa.array(sorted(set(catalog)), pa.int64())
    files = split_files(data_dir, span_window)
    for paths in files.values():
        for path in paths:
            products = read([path], features.PRODUCT_KEY, pa.int64())
            unknown = products.filter(pc.invert(pc.is_in(products, value_set=known)))
            if len(unknown):
                sample = pc.unique(unknown).to_pylist()[:10]
                raise DataError(
                    f"{os.path.relpath(path, data_dir)}: {len(unknown):,} of {len(products):,} purchases are of "
                    f"products not in the catalog {configs.CATALOG_FILE}, e.g. {sample}; fix the "
                    f"catalog or the purchases, at {path}")
    if "train" in files and "eval" in files:
        for column, what, arrow_type, means in [
                (features.USER_KEY, "users", pa.binary(),
                 "the model answers them with the most popular products"),
                (features.PRODUCT_KEY, "products", pa.int64(),
                 "the model cannot recommend them: their purchases count as misses")]:
            train = pc.unique(read(files["train"], column, arrow_type))
            evaluated = pc.unique(read(files["eval"], column, arrow_type))
            unseen = int(pc.sum(pc.invert(pc.is_in(evaluated, value_set=train))).as_py() or 0)
            if unseen:
                progress.info("[data] eval: %s of %s %s never occur in train (%s)", f"{unseen:,}",
                              f"{len(evaluated):,}", what, means)


def read_catalog(path: str) -> List[int]:
    """The catalog's product ids; DataError unless it is product ids one a line (CatalogCheck
    reads it only after Transform: a header or a stray word would stop the run there)."""
    from components import catalog_check

    try:
        return catalog_check.read_catalog(path)
    except (catalog_check.CatalogFormatError, UnicodeDecodeError) as e:
        raise DataError(f"{os.path.basename(path)}: {e}") from e


def download(url: str, dest: str, expected_sha256: str, timeout: float = 60) -> None:
    """Downloads `url` to `dest` atomically; the file appears only once its checksum is right."""
    name = os.path.basename(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=os.path.dirname(dest))
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, out)
            except (urllib.error.URLError, OSError) as e:
                raise DataError(f"{name}: download from {url} failed: {e}") from e
        actual = sha256_of(tmp)
        if actual != expected_sha256:
            raise DataError(f"{name}: downloaded from {url} but its sha256 is {actual}, "
                            f"expected {expected_sha256}; the file was not kept")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def ensure_data(data_dir: str,
                verify_checksums: bool = True,
                source_url: str = configs.DATA_SOURCE_URL,
                expected: Optional[Dict[str, str]] = None,
                sizes: Optional[Dict[str, int]] = None,
                span_window: int = configs.DEFAULT_SPAN_WINDOW) -> str:
    """Makes sure `data_dir` holds the input files, downloading missing published ones.

    The flat layout is the ASOS train, eval and catalog files; the span layout
    (components/spans.py) is the catalog at the top, one folder per span, and optionally a
    standing eval file at the top (ASOS's users file is read by nothing: neither needed nor
    downloaded). With `verify_checksums` every published file (present or downloaded; in the span
    layout the catalog and a standing eval file) must match its sha256; without
    it (data of your own in the same shape) the files only need to exist. Either way the layout
    must be well-formed and the parquet files a run reads (the window of `span_window` spans,
    the eval files, the previous span) readable parquet with the purchase columns.
    Returns the absolute data directory.
    """
    expected = configs.DATA_SHA256 if expected is None else expected
    sizes = DATA_SIZES if sizes is None else sizes
    data_dir = os.path.abspath(data_dir)
    if os.path.islink(data_dir) and not os.path.isdir(data_dir):
        link = os.readlink(data_dir)
        target = os.path.normpath(os.path.join(os.path.dirname(data_dir), link))
        shown = link if target == link else f"{link} ({target})"
        state = "is a file" if os.path.exists(data_dir) else "does not exist"
        raise DataError(f"{data_dir} is a symbolic link to {shown}, which {state}: point the link at the "
                        "directory that holds the files, or pass --data-dir (no other copy is read in its place)")
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise DataError(f"{data_dir} is a file, not a directory: --data-dir names the directory "
                        "that holds the train, eval and catalog files")
    if os.path.isdir(data_dir) and has_span_folders(data_dir):
        # the purchases are in span folders: the catalog stays at the top
        expected = {name: sha for name, sha in expected.items()
                    if name == configs.CATALOG_FILE
                    or (name == configs.EVAL_FILE and os.path.isfile(os.path.join(data_dir, name)))}
    folders = [n for n in expected if os.path.isdir(os.path.join(data_dir, n))]
    if folders:  # e.g. a partitioned parquet dataset written by Spark
        raise DataError(f"{', '.join(folders)}: a directory in {data_dir}, not a file: each of the files "
                        "must be one file (a parquet dataset written in parts: read it and write it as "
                        "one file)")
    missing = [n for n in expected if not os.path.isfile(os.path.join(data_dir, n))]
    if missing and not verify_checksums:
        if not os.path.isdir(data_dir):
            raise DataError(f"{data_dir}: no such directory (--data-dir names the directory that "
                            "holds the train, eval and catalog files)")
        others = sorted(n for n in os.listdir(data_dir)
                        if n not in expected and n != configs.USERS_FILE and n.endswith((".parquet", ".csv")))
        found = (f"; it has {', '.join(others[:6])}{' ...' if len(others) > 6 else ''}: the files "
                 "must have the ASOS names (pipeline/configs.py)") if others else ""
        raise DataError(f"{', '.join(missing)}: missing in {data_dir}{found} (downloads happen "
                        "only for the published ASOS files, i.e. without --skip-checksums)")
    if verify_checksums:  # the files there first: data of one's own is said before anything is downloaded
        # (found by exploratory testing: without --skip-checksums, the ASOS catalog was fetched
        # into a folder of other data, then its train file failed its checksum)
        for name, sha in expected.items():
            if name not in missing:
                check_file(os.path.join(data_dir, name), sha, sizes.get(name))
    for name in missing:  # each checked against its checksum as it arrives (download)
        url = f"{source_url.rstrip('/')}/{name}"
        progress.info("[data] downloading %s from %s", name, url)
        try:
            os.makedirs(data_dir, exist_ok=True)
            download(url, os.path.join(data_dir, name), expected[name])
        except OSError as e:  # the directory cannot be created or written: say where and why
            raise DataError(f"{name}: cannot be downloaded into {data_dir}: {e}") from e
    check_split_files(data_dir, span_window)
    check_purchases_in_catalog(data_dir, read_catalog(os.path.join(data_dir, configs.CATALOG_FILE)),
                               span_window)
    say_repeated_pairs(data_dir, span_window)
    return data_dir


def say_repeated_pairs(data_dir: str, span_window: int = configs.DEFAULT_SPAN_WINDOW) -> None:
    """Says on the console how many train purchases of the window repeat a (user, product) pair
    (report_figures.repeated_pairs; the run report's data table has it too): the ASOS sample has
    none, real data may, and a row delivered many times weighs that much more in training."""
    import pyarrow as pa

    from components import report_figures

    paths = split_files(data_dir, span_window).get("train") or []
    if not paths:
        return
    users = read_column(paths, features.USER_KEY, pa.binary())
    products = read_column(paths, features.PRODUCT_KEY, pa.int64())
    repeated, most = report_figures.repeated_pairs(users.to_numpy(zero_copy_only=False),
                                                   products.to_numpy(zero_copy_only=False))
    if repeated:
        progress.info("[data] train: %s of %s purchases (%.1f%%) repeat a (user, product) pair, one pair %s times "
                      "(bought again, or rows delivered twice? each row is a training example)",
                      f"{repeated:,}", f"{len(products):,}", 100 * repeated / len(products), f"{most:,}")


def has_span_folders(data_dir: str) -> bool:
    """Whether `data_dir` has a folder named as a span (span-N, YYYY-MM-DD, YYYYMMDD)."""
    for name in os.listdir(data_dir):
        if os.path.isdir(os.path.join(data_dir, name)):
            try:
                if spans.span_number(name):
                    return True
            except spans.SpanLayoutError:
                return True
    return False
