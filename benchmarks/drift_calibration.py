"""The drift gate's thresholds, measured: seeded random spans of the ASOS train purchases (the
replay's split: K spans, the first twice as large as the others) pass, and so do the same spans
with twice the customers buying as before; the same spans with their popularity turned upside
down, with their heaviest buyers buying 3x, or with one new account making 1% of the purchases,
do not.

    flock /tmp/recsys-heavy.lock env/run-in-env python benchmarks/drift_calibration.py
    env/run-in-env python benchmarks/drift_calibration.py --seeds 0 --spans 4 --out /tmp/calibration

For each seed it splits the train file into spans (`random_spans`), writes them as span
folders, and runs the DriftGate's executor (components/drift.py, the code a run runs, Beam's
FnApiRunner) on each span against the one before it, five ways: as it is (`random`), with twice
its customers, who buy as its own do (`busier`: its rows twice under new user ids; not against
the first span, twice as long, where each of them would buy half as much), with the
popularity of the previous span's products reversed (`inverted`: the product of rank r becomes
the product of rank n-1-r), with its `--heavy-buyers` heaviest buyers buying 3 times as much
(`heavy`), and with one new account making `--newcomer-share` of its purchases (`newcomer`: a
reseller or a bot arriving). It prints one line per comparison, then each measure's range per
kind next to its threshold (pipeline/configs.py DEFAULT_DRIFT_THRESHOLDS), and whether every
random span passes and every altered span is stopped. About 20 s per comparison on 2 cores.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import json
import os
import shutil
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models import features
from pipeline import configs

KINDS = ("random", "busier", "inverted", "heavy", "newcomer")
PASSING = ("random", "busier")  # the kinds every span of which must pass; the others, be stopped
SHORT = {  # column titles of the measures, in components/drift.py's order
    0: "prod L-inf", 1: "prod JS", 2: "rows x", 3: "user JS", 4: "top1% x", 5: "user L-inf",
    6: "repeated"}


def random_spans(rows: int, k: int, seed: int) -> np.ndarray:
    """Each row's span, 1..k, drawn at random (seeded): the first span gets twice the share of
    each other one (k=4: 40%, 20%, 20%, 20%). The ASOS sample has no timestamps, so spans can
    only be random: they differ by sampling noise alone."""
    shares = np.array([2.0] + [1.0] * (k - 1))
    return np.random.default_rng(seed).choice(np.arange(1, k + 1), size=rows, p=shares / shares.sum())


def inverted(table: pa.Table, reference: pa.Table) -> pa.Table:
    """`table` with its popularity turned upside down: the product of rank r in `reference`'s
    ranking (most bought first) becomes the product of rank n-1-r; other products stay."""
    counts = reference.group_by(features.PRODUCT_KEY).aggregate([(features.PRODUCT_KEY, "count")])
    order = np.lexsort((counts.column(features.PRODUCT_KEY).to_numpy(),
                        -counts.column(f"{features.PRODUCT_KEY}_count").to_numpy()))
    ranked = counts.column(features.PRODUCT_KEY).to_numpy()[order]
    products = table.column(features.PRODUCT_KEY).to_numpy()
    position = {int(p): i for i, p in enumerate(ranked)}
    flipped = np.array([ranked[len(ranked) - 1 - position[p]] if p in position else p
                        for p in products.tolist()], dtype=products.dtype)
    return table.set_column(table.schema.get_field_index(features.PRODUCT_KEY), features.PRODUCT_KEY,
                            pa.array(flipped, table.schema.field(features.PRODUCT_KEY).type))


def busier(table: pa.Table) -> pa.Table:
    """`table` with twice the customers, who buy as its own do: its rows twice, under user ids
    made new by a suffix (a bigger span is not a shift)."""
    users = table.column(features.USER_KEY)
    kind = users.type

    def renamed(suffix: bytes) -> pa.Table:
        ids = pc.binary_join_element_wise(users.cast(pa.binary()), pa.scalar(suffix, pa.binary()), b"")
        return table.set_column(table.schema.get_field_index(features.USER_KEY), features.USER_KEY,
                                ids.cast(kind))
    return pa.concat_tables([renamed(b"-a"), renamed(b"-b")])


def heavier(table: pa.Table, buyers: int, times: int = 3) -> pa.Table:
    """`table` where its `buyers` heaviest buyers buy `times` as much (their rows repeated)."""
    counts = table.group_by(features.USER_KEY).aggregate([(features.USER_KEY, "count")])
    order = np.argsort(-counts.column(f"{features.USER_KEY}_count").to_numpy(), kind="stable")
    heavy = counts.column(features.USER_KEY).take(pa.array(order[:buyers]))
    rows = table.filter(pc.is_in(table.column(features.USER_KEY), value_set=heavy))
    return pa.concat_tables([table] + [rows] * (times - 1))


def newcomer(table: pa.Table, share: float, seed: int = 0, account: bytes = b"NEWACCOUNT0000000000") -> pa.Table:
    """`table` with one new account that makes `share` of its purchases (a reseller or a bot
    arriving), buying its products as often as the span's customers do (rows drawn from it)."""
    extra = int(round(share * table.num_rows / (1 - share)))
    rows = table.take(pa.array(np.random.default_rng(seed).integers(0, table.num_rows, extra)))
    user = table.column(features.USER_KEY).type
    account = pa.array([account] * extra, pa.binary()).cast(user)
    return pa.concat_tables([table, rows.set_column(rows.schema.get_field_index(features.USER_KEY),
                                                    features.USER_KEY, account)])


def write_spans(train_file: str, out_dir: str, k: int, seed: int) -> List[str]:
    """The train file split into span folders span-1 .. span-k under `out_dir`; their paths."""
    table = pq.read_table(train_file)
    span = random_spans(table.num_rows, k, seed)
    folders = []
    for number in range(1, k + 1):
        folder = os.path.join(out_dir, f"span-{number}")
        os.makedirs(folder, exist_ok=True)
        pq.write_table(table.filter(pa.array(span == number)), os.path.join(folder, configs.TRAIN_FILE))
        folders.append(folder)
    return folders


def compare(newest_files: Sequence[str], previous_files: Sequence[str], work_dir: str,
            thresholds: Dict[str, float], numbers: Sequence[int] = (2, 1)) -> Optional[Dict]:
    """The DriftGate executor's figures for two spans, each given by its train files (as a run
    computes them: ExampleGen records each span's train files, the gate reads them all);
    `numbers`: the spans' numbers (newest, previous). None when the gate writes no figures (it
    refuses an empty newest span before measuring anything)."""
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts
    from tfx.utils import json_utils

    from components import drift, parquet_example_gen

    examples = standard_artifacts.Examples()
    newest, previous = (int(n) for n in numbers)
    examples.set_int_custom_property(parquet_example_gen.SPAN_PROPERTY, newest)
    examples.set_int_custom_property(parquet_example_gen.PREVIOUS_SPAN_PROPERTY, previous)
    examples.set_string_custom_property(parquet_example_gen.SPAN_TRAIN_FILES_PROPERTY, json.dumps({
        str(newest): list(newest_files), str(previous): list(previous_files)}))
    schema = standard_artifacts.Schema()
    schema.uri = configs.SCHEMA_DIR
    report = drift.DriftReport()
    report.uri = tempfile.mkdtemp(dir=work_dir)
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=configs.local_beam_args())
    try:
        drift.Executor(context).Do({"examples": [examples], "schema": [schema]}, {"drift_report": [report]},
                                   {"thresholds": json_utils.dumps(thresholds), "accept_drift": 0})
    except drift.DriftError:
        pass  # the figures are written before the gate refuses
    return drift.read_report(report.uri)


def _line(seed, pair, kind, figures) -> str:
    values = "  ".join(f"{m['value']:>10.4f}" for m in figures["measures"])
    return f"{seed:>4}  {pair:<5} {kind:<9}{values}  {'STOPPED' if figures['drifted'] else 'passes'}"


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=configs.default_data_dir(), help="the ASOS files; default %(default)s")
    parser.add_argument("--spans", type=int, default=4, help="K, spans per seed; default %(default)s")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default %(default)s")
    parser.add_argument("--heavy-buyers", type=int, default=500,
                        help="the heavy variant: how many of the span's heaviest buyers buy 3x; default %(default)s")
    parser.add_argument("--newcomer-share", type=float, default=0.01,
                        help="the newcomer variant: one new account's share of the span's purchases; "
                             "default %(default)s")
    parser.add_argument("--out", help="where the spans are written (default: a temporary directory, removed)")
    args = parser.parse_args(argv)

    thresholds = dict(configs.DEFAULT_DRIFT_THRESHOLDS)
    out = args.out or tempfile.mkdtemp(prefix="drift-calibration-")
    train_file = os.path.join(args.data_dir, configs.TRAIN_FILE)
    print(f"[drift] {train_file}: {args.spans} random spans per seed (the first twice as large), seeds "
          f"{args.seeds}; each span against the one before it", flush=True)
    header = "  ".join(f"{SHORT[i]:>10}" for i in range(len(SHORT)))
    print(f"seed  pair  kind     {header}  verdict", flush=True)
    results = {kind: [] for kind in KINDS}
    try:
        for seed in args.seeds:
            folders = write_spans(train_file, os.path.join(out, f"seed-{seed}"), args.spans, seed)
            for previous, newest in zip(folders, folders[1:]):
                table, reference = (pq.read_table(os.path.join(f, configs.TRAIN_FILE)) for f in (newest, previous))
                variants = {"random": newest}
                altered_kinds = [("inverted", inverted(table, reference)),
                                 ("heavy", heavier(table, args.heavy_buyers)),
                                 ("newcomer", newcomer(table, args.newcomer_share, seed))]
                if previous != folders[0]:
                    # twice the customers buying as before, against a span as long: against the
                    # first span (twice as long) each of them would buy half as much, a real shift
                    altered_kinds.insert(0, ("busier", busier(table)))
                for kind, altered in altered_kinds:
                    variants[kind] = os.path.join(out, f"seed-{seed}", f"{os.path.basename(newest)}-{kind}")
                    os.makedirs(variants[kind], exist_ok=True)
                    pq.write_table(altered, os.path.join(variants[kind], configs.TRAIN_FILE))
                for kind, folder in variants.items():
                    figures = compare([os.path.join(folder, configs.TRAIN_FILE)],
                                      [os.path.join(previous, configs.TRAIN_FILE)], out, thresholds)
                    results[kind].append(figures)
                    pair = f"{os.path.basename(newest)[5:]}v{os.path.basename(previous)[5:]}"
                    print(_line(seed, pair, kind, figures), flush=True)
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)

    print("\nrange per kind (min .. max), against the thresholds of pipeline/configs.py:")
    names = [m["name"] for m in results["random"][0]["measures"]]
    limits = [m["limit"] for m in results["random"][0]["measures"]]
    for i, name in enumerate(names):
        ranges = "   ".join(f"{kind} {min(f['measures'][i]['value'] for f in results[kind]):.4f}.."
                           f"{max(f['measures'][i]['value'] for f in results[kind]):.4f}"
                           for kind in KINDS if results[kind])
        print(f"  {name:<56} {limits[i]:<14} {ranges}")
    passed = {kind: sum(not f["drifted"] for f in results[kind]) for kind in PASSING}
    stopped = {kind: sum(f["drifted"] for f in results[kind]) for kind in KINDS if kind not in PASSING}
    print("\n" + "; ".join([f"{kind} spans passing: {n} of {len(results[kind])}" for kind, n in passed.items()]
                           + [f"{kind} spans stopped: {n} of {len(results[kind])}" for kind, n in stopped.items()]))
    ok = (all(n == len(results[k]) for k, n in passed.items())
          and all(n == len(results[k]) for k, n in stopped.items()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
