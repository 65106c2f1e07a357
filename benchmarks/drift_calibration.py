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

Your own spans (`--span-dir DATA_DIR`, the span layout of components/spans.py: span-N/ or dated
folders, each with one or more train files, found as a run finds them):

    flock /tmp/recsys-heavy.lock env/run-in-env python benchmarks/drift_calibration.py --span-dir DATA_DIR

compares each span with the one before it as it is (`real`), and altered as above (`inverted`,
`heavy`: the newest span's heaviest 2.5% of buyers unless --heavy-buyers, `newcomer`), against
the current thresholds (the defaults, with --drift-threshold NAME=VALUE as a run takes it). It
prints each measure's range over the real pairs, its current threshold and a suggested one
(`suggest`: the current one where the real pairs are within it by --margin, else the real pairs'
largest value x margin, the smallest / margin for a lower bound, rounded outwards to 2 digits;
tightened to that where it stops an altered span the current one lets through), whether the
suggested thresholds still stop each altered kind and by which measure, and the suggested
thresholds as `--drift-threshold` flags. Exit 0 when they pass every real pair and stop every
altered one; 1 when an altered kind gets through (your spans vary as much as the shift the gate
is meant to catch); 2 when the spans cannot be compared (a flat layout, one span, an empty span).
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from benchmarks import console  # noqa: F401  (TensorFlow's and Beam's own lines to outputs/logs/benchmarks.log)

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cli import flags as cli_flags
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
        folder = os.path.join(out_dir, configs.span_folder(number))
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
    # shaped as the pipeline's <root>/DriftGate/drift_report/<id>: a drifted span's figures are kept
    # beside it, in <root>/DriftGate/rejected/ (components/drift.py _keep_rejected), inside
    # `work_dir`; a bare temporary directory put them in /tmp/rejected/, left behind
    reports = os.path.join(work_dir, "DriftGate", "drift_report")
    os.makedirs(reports, exist_ok=True)
    report.uri = tempfile.mkdtemp(dir=reports)
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


# --- the user's own spans (--span-dir) ----------------------------------------------------------
SPAN_KINDS = ("inverted", "heavy", "newcomer")  # altered versions of each newest span: to be stopped
DEFAULT_MARGIN = 1.25
HEAVY_SHARE = 0.025  # the heavy variant's buyers, as a share of the span's: the ASOS mode's 500 of ~20,000
# The report's measures by key, in components/drift.py's order (MEASURE_NAMES, as SHORT). How each
# is bounded, and by which threshold(s) the gate and --drift-threshold take: the gate's own
# drift.BOUNDS (`bounds`), and its own judgement (drift.outside)
MEASURES = ("product_l_infinity", "product_jensen_shannon", "rows_ratio", "purchases_per_user_jensen_shannon",
            "top_users_share_ratio", "user_l_infinity", "repeated_rows")
AT_MOST_ONE = ("product_l_infinity", "product_jensen_shannon", "purchases_per_user_jensen_shannon",
               "user_l_infinity", "repeated_rows")  # a share or a divergence: a threshold above 1 means nothing
# the measures meant to stop each altered kind (docs/pipeline.md, "Calibration"): the only ones the
# suggestion tightens for it
MEANT = {"inverted": ("product_l_infinity", "product_jensen_shannon"),
         "heavy": ("purchases_per_user_jensen_shannon", "top_users_share_ratio"),
         "newcomer": ("user_l_infinity",)}
IDENTICAL = "identical_files"


def measure_name(key: str) -> str:
    """The measure's name in the gate's report (components/drift.py MEASURE_NAMES)."""
    from components import drift
    return drift.MEASURE_NAMES[MEASURES.index(key)]


def bounds(key: str):
    """(how its thresholds bound the measure: drift.UPPER, RANGE or EITHER_WAY, the thresholds' names)."""
    from components import drift
    return drift.BOUNDS[measure_name(key)]


def measure_values(figures: Dict) -> Dict[str, Optional[float]]:
    """{measure key: value} of a DriftGate report (None: not measured), and IDENTICAL: whether a
    train file of the newest span is byte-identical to another (over whatever the threshold)."""
    values = {key: m["value"] for key, m in zip(MEASURES, figures["measures"])}
    values[IDENTICAL] = bool((figures.get("repeats") or {}).get("identical_files"))
    return values


def over(values: Dict[str, Optional[float]], thresholds: Dict[str, float]) -> List[str]:
    """The measures over `thresholds`, judged by the gate's own code (components/drift.py outside;
    a byte-identical train file is over whatever the threshold, as in figures_of)."""
    from components import drift
    return [key for key in MEASURES if values.get(key) is not None
            and (drift.outside(measure_name(key), values[key], thresholds)
                 or (key == "repeated_rows" and values.get(IDENTICAL)))]


def round_out(value: float, up: bool = True, digits: int = 2) -> float:
    """`value` to `digits` significant digits, rounded up (down with `up` False): a threshold
    rounded so that it still holds what it was computed from."""
    if not value or not math.isfinite(value):
        return value
    unit = 10.0 ** (math.floor(math.log10(abs(value))) - digits + 1)
    steps = round(value / unit, 9)
    steps = math.ceil(steps) if up else math.floor(steps)
    return float(f"{steps * unit:.{digits}g}")


def needed_thresholds(real: Sequence[Dict[str, Optional[float]]], margin: float) -> Dict[str, float]:
    """The tightest thresholds that pass every real pair with `margin` to spare: the largest
    value x margin (the rows ratio's lower bound: the smallest / margin; the top users' share
    ratio, allowed either way: the largest of value and 1/value, x margin), rounded outwards to 2
    digits; a share or a divergence at most 1."""
    from components import drift
    needed = {}
    for key in MEASURES:
        bound, names = bounds(key)
        values = [v[key] for v in real if v.get(key) is not None]
        if not values:
            continue
        if bound == drift.RANGE:
            needed[names[0]] = round_out(min(values) / margin, up=False)
            needed[names[1]] = round_out(max(values) * margin)
        elif bound == drift.EITHER_WAY:
            needed[names[0]] = round_out(max(max(v, 1 / v) if v > 0 else math.inf for v in values) * margin)
        else:
            needed[names[0]] = round_out(max(values) * margin)
        if key in AT_MOST_ONE:
            needed[names[0]] = min(needed[names[0]], 1.0)
    return needed


def _looser(name: str, a: float, b: float) -> float:
    return min(a, b) if name == "min_rows_ratio" else max(a, b)


def suggest(real: Sequence[Dict[str, Optional[float]]], altered: Dict[str, Sequence[Dict[str, Optional[float]]]],
            current: Dict[str, float], margin: float = DEFAULT_MARGIN) -> Dict[str, float]:
    """The suggested thresholds (docs/pipeline.md, "Calibrating on your spans"):

    1. each threshold is the current one where that passes every real pair with `margin` to
       spare, else the tightest one that does (`needed_thresholds`): loosened just enough for the
       user's spans, never loosened where they fit;
    2. where an altered kind still gets through in a pair, a threshold meant to stop it (MEANT)
       that is looser than needed, and that at its needed value would stop it there, is tightened
       to its needed value (it still passes every real pair with the margin).
    An altered kind that gets through even then is within the user's real variation."""
    needed = needed_thresholds(real, margin)
    suggested = {name: _looser(name, value, needed.get(name, value)) for name, value in current.items()}
    for kind, pairs in altered.items():
        for values in pairs:
            if over(values, suggested):
                continue
            tight = {**suggested, **{n: needed[n] for key in MEANT.get(kind, ())
                                     for n in bounds(key)[1] if n in needed}}
            for key in over(values, tight):
                for name in bounds(key)[1]:
                    suggested[name] = tight[name]
    return suggested


def flag_list(thresholds: Dict[str, float], defaults: Dict[str, float] = None) -> str:
    """`--drift-threshold name=value ...` for each threshold that differs from the defaults a
    run starts from (pipeline/configs.py DEFAULT_DRIFT_THRESHOLDS)."""
    defaults = configs.DEFAULT_DRIFT_THRESHOLDS if defaults is None else defaults
    return " ".join(f"--drift-threshold {name}={value:g}" for name, value in thresholds.items()
                    if value != defaults.get(name))


def find_spans(span_dir: str):
    """The spans under `span_dir` as a run finds them (components/spans.py read_layout, the
    run's file patterns): span-N or dated folders, each with one or more train files.
    SpanLayoutError for a malformed layout, the flat layout, or fewer than 2 spans."""
    from components import spans

    layout = spans.read_layout(span_dir, configs.SPLIT_PATTERNS["train"], configs.SPLIT_PATTERNS["eval"])
    if layout.flat:
        raise spans.SpanLayoutError(
            f"{span_dir}: the flat layout (a train file at the top) is one span, nothing to compare it with: put "
            "each span's train files in a folder of its own (span-N/ or YYYY-MM-DD/)")
    if len(layout.spans) < 2:
        raise spans.SpanLayoutError(
            f"{span_dir}: one span ({layout.spans[0].folder}/): the gate compares each span with the one before "
            "it, calibrating needs 2 spans or more")
    return layout.spans


def _span_line(label: str, kind: str, figures: Dict, verdict: str) -> str:
    values = "  ".join(" " * 10 if m["value"] is None else f"{m['value']:>10.4f}" for m in figures["measures"])
    return f"{label:<26}{kind:<9}{values}  {verdict}"


def kind_texts(newcomer_share: float) -> Dict[str, str]:
    return {"inverted": "popularity upside down", "heavy": "heaviest buyers 3x",
            "newcomer": f"a new account, {newcomer_share * 100:g}%"}


def calibrate_spans(args) -> int:
    """The --span-dir mode (module docstring): 0 when the suggested thresholds pass every real
    pair and stop every altered one, 1 otherwise, 2 for spans that cannot be compared."""
    from components import drift, spans

    current = {**configs.DEFAULT_DRIFT_THRESHOLDS, **dict(args.drift_threshold or [])}
    try:
        drift.check_thresholds(current)
        found = find_spans(args.span_dir)
        for span in found:
            rows = sum(pq.ParquetFile(path).metadata.num_rows for path in span.train)
            if not rows:
                raise spans.SpanLayoutError(spans.empty_span_text(span.folder, len(span.train)))
    except (ValueError, OSError, pa.ArrowException) as e:  # SpanLayoutError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or tempfile.mkdtemp(prefix="drift-calibration-")
    several = [f"{s.folder} {len(s.train)} files" for s in found if len(s.train) > 1]
    heaviest = f"{args.heavy_buyers:,}" if args.heavy_buyers else f"{HEAVY_SHARE:.1%} of"
    print(f"[drift] {args.span_dir}: {len(found)} spans ({', '.join(s.folder for s in found)}"
          f"{'; ' + ', '.join(several) if several else ''}); each against the one before it, as it is (real) and "
          f"altered: popularity upside down, the heaviest {heaviest} buyers 3x, a new account making "
          f"{args.newcomer_share * 100:g}% of the purchases", flush=True)
    header = "  ".join(f"{SHORT[i]:>10}" for i in range(len(SHORT)))
    print(f"{'newest vs previous':<26}{'kind':<9}{header}  verdict (current thresholds)", flush=True)
    real, altered, labels = [], {kind: [] for kind in SPAN_KINDS}, []
    try:
        for previous, newest in zip(found, found[1:]):
            label = f"{newest.folder} vs {previous.folder}"
            labels.append(label)
            numbers = (newest.number, previous.number)
            figures = compare(newest.train, previous.train, out, current, numbers)
            real.append(measure_values(figures))
            print(_span_line(label, "real", figures, "STOPPED" if figures["drifted"] else "passes"), flush=True)
            table, reference = drift.read_span(newest.train), drift.read_span(previous.train)
            buyers = args.heavy_buyers or max(1, round(HEAVY_SHARE * len(pc.unique(table.column(features.USER_KEY)))))
            for kind, changed in (("inverted", inverted(table, reference)), ("heavy", heavier(table, buyers)),
                                  ("newcomer", newcomer(table, args.newcomer_share))):
                folder = os.path.join(out, f"{newest.folder}-{kind}")
                os.makedirs(folder, exist_ok=True)
                pq.write_table(changed, os.path.join(folder, configs.TRAIN_FILE))
                figures = compare([os.path.join(folder, configs.TRAIN_FILE)], previous.train, out, current, numbers)
                altered[kind].append(measure_values(figures))
                print(_span_line("", kind, figures, "STOPPED" if figures["drifted"] else "gets through"), flush=True)
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    return report_suggestion(real, altered, labels, current, args.margin, kind_texts(args.newcomer_share))


def report_suggestion(real, altered, labels, current, margin, texts) -> int:
    """Prints each measure's range over the real pairs, its current and suggested threshold,
    what the suggested thresholds stop, and the flags; the exit code (calibrate_spans)."""
    from components import drift

    suggested = suggest(real, altered, current, margin)
    print(f"\nper measure, over the {len(real)} real pairs; suggested: the current threshold where the real pairs are "
          f"within it by x{margin:g}, else their largest value x{margin:g} (a lower bound: their smallest / "
          f"{margin:g}), rounded outwards to 2 digits; tightened to that where it stops an altered span the "
          "current one lets through:")
    print(f"  {'measure':<56} {'real pairs':<16} {'current':<14} suggested")
    for key, name in zip(MEASURES, drift.MEASURE_NAMES):
        names = bounds(key)[1]
        values = [v[key] for v in real if v.get(key) is not None]
        span = f"{min(values):.4f}..{max(values):.4f}" if values else "-"
        change = [n for n in names if suggested[n] != current[n]]
        note = ("" if not change else "  loosened" if all(_looser(n, suggested[n], current[n]) == suggested[n]
                                                          for n in change) else "  tightened")
        limits = f"{drift.limit_text(name, current):<14} {drift.limit_text(name, suggested):<14}"
        print(f"  {name:<56} {span:<16} {limits}{note}".rstrip())

    names = dict(zip(MEASURES, drift.MEASURE_NAMES))
    real_over = [(label, over(v, suggested)) for label, v in zip(labels, real)]
    failing = [(label, keys) for label, keys in real_over if keys]
    print(f"\nwith the suggested thresholds: real pairs passing {len(real) - len(failing)} of {len(real)}" +
          "".join(f"; {label} stopped by {', '.join(names[k] for k in keys)}"
                  + (" (a train file byte-identical to another: over whatever the threshold)"
                     if "repeated_rows" in keys else "") for label, keys in failing))
    through = {}
    for kind in SPAN_KINDS:
        stops = [over(v, suggested) for v in altered[kind]]
        by = {}
        for keys in stops:
            for k in keys:
                by[k] = by.get(k, 0) + 1
        through[kind] = [label for label, keys in zip(labels, stops) if not keys]
        stopped = len(stops) - len(through[kind])
        print(f"  {texts[kind]:<24} stopped {stopped} of {len(stops)}"
              + (f", by {', '.join(f'{names[k]} ({n})' for k, n in by.items())}" if by else "")
              + (f"; gets through in {', '.join(through[kind])}" if through[kind] else ""))
    flags = flag_list(suggested)
    print("\nsuggested thresholds" + (f" (those that differ from pipeline/configs.py's defaults):\n  {flags}\n"
                                     f"  make run ARGS=\"{flags}\"" if flags else ": the defaults (no flag needed)"))
    ok = not failing and not any(through.values())
    needed = needed_thresholds(real, margin)
    for kind, pairs in through.items():
        if not pairs:
            continue
        detail = []
        for key in MEASURES:
            if key not in MEANT[kind]:
                continue
            values = [v[key] for label, v in zip(labels, altered[kind]) if label in pairs and v.get(key) is not None]
            reals = [v[key] for v in real if v.get(key) is not None]
            if values and reals:
                detail.append(f"{names[key]}: real pairs {min(reals):.4f}..{max(reals):.4f}, needing "
                              f"{drift.limit_text(names[key], {**suggested, **needed})} with the margin; {texts[kind]} "
                              f"{min(values):.4f}..{max(values):.4f}")
        hint = {"heavy": "a larger --heavy-buyers", "newcomer": "a larger --newcomer-share"}.get(kind)
        print(f"\n{texts[kind]}: gets through in {len(pairs)} of {len(altered[kind])} pairs. Your spans' real "
              f"variation is as large as the shift the gate is meant to catch: no threshold that passes them with "
              f"x{margin:g} to spare stops it ({'; '.join(detail)}). The gate will not tell such a shift from an "
              f"ordinary span of yours{f'; {hint} shows what it still stops' if hint else ''}.")
    return 0 if ok else 1


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=configs.default_data_dir(), help="the ASOS files; default %(default)s")
    parser.add_argument("--spans", type=int, default=4, help="K, spans per seed; default %(default)s")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default %(default)s")
    parser.add_argument("--span-dir", metavar="DATA_DIR",
                        help="calibrate on your own spans instead: DATA_DIR in the span layout a run reads (span-N/ "
                             "or dated folders, each with one or more train files); prints suggested thresholds")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                        help="with --span-dir: how far the suggested thresholds stay from the real pairs' largest "
                             "values (x margin; a lower bound / margin); default %(default)s")
    cli_flags.add(parser, [configs.DRIFT_THRESHOLD_FLAG])
    parser.add_argument("--heavy-buyers", type=int,
                        help="the heavy variant: how many of the span's heaviest buyers buy 3x; default 500 "
                             f"(with --span-dir: {HEAVY_SHARE:.1%} of the newest span's buyers, as 500 is of an "
                             "ASOS span's)")
    parser.add_argument("--newcomer-share", type=float, default=0.01,
                        help="the newcomer variant: one new account's share of the span's purchases; "
                             "default %(default)s")
    parser.add_argument("--out", help="where the spans are written (default: a temporary directory, removed)")
    args = parser.parse_args(argv)
    if args.margin < 1:
        parser.error(f"--margin must be 1 or more, got {args.margin:g}")
    if args.span_dir:
        return calibrate_spans(args)
    if args.drift_threshold:
        parser.error("--drift-threshold goes with --span-dir (the ASOS mode measures the defaults)")
    if args.heavy_buyers is None:
        args.heavy_buyers = 500

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
