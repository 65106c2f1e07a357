"""How the pipeline's cost grows with its data: the ASOS sample made k times bigger, run at each k.

    env/run-in-env python benchmarks/scale.py                       # k = 1, 2, 4 (about 25 minutes on 2 cores)
    env/run-in-env python benchmarks/scale.py --sizes 1,2 --heavy-tail 10
    env/run-in-env python benchmarks/scale.py --table-only          # the table of the last runs

For each k: the data (`scaled_data`: k disjoint copies of the ASOS files, each copy's users and
products given fresh ids, so purchases, users and catalog products all grow k times;
`--heavy-tail N` adds N users per copy with hundreds to thousands of purchases,
benchmarks/heavy_data.py), then the local pipeline as `make run` runs it (cache off, an output
directory of its own; extra flags with --run-arg), then the same work as a plain script without
TFX (benchmarks/bare_pipeline.py). Each run's figures are kept in OUTPUT_ROOT/results-k<k>.json.

Prints per component its seconds and peak memory at each size and the growth exponent between
consecutive sizes, log(t2 / t1) / log(k2 / k1): 1 grows as the data, 2 as its square. The
components that score the whole catalog for every eval purchase or user (the Evaluator's full
ranking, BatchRecommendations, and the run report's popularity baseline) do work users x
products, which grows as k squared; they are named as such, and any other component above
SUPERLINEAR is named as unexpected. Last: the whole run's wall time against the bare script's
(the price of TFX's validation, caching, gating and reporting).

`--lock FILE` takes an exclusive flock on FILE around each run (the machine's shared-CPU rule).
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import contextlib
import fcntl
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import heavy_data
from benchmarks.pipeline_time import run_local
from models import features
from pipeline import configs
from runner import memory

# The components whose work is users (or eval purchases) x catalog products: k**2.
CATALOG_SCORING = {
    "Evaluator": "every eval purchase ranked against the whole catalog",
    "BatchRecommendations": "every user's top 100 from the whole catalog",
    "RunReport": "the popularity baseline and coverage@10 through the serving module, each eval "
                 "user against the whole catalog",
}
SUPERLINEAR = 1.25  # a time exponent above this grows faster than the data (with some noise)
ID_LENGTH = heavy_data.ID_LENGTH


# --- The data ----------------------------------------------------------------------------------
def _copy_user_ids(users: np.ndarray, copy: int) -> np.ndarray:
    """Fresh 20-character ids for copy `copy` (0: the ids as they are): `S<copy, 3 digits>` and
    the id's last 16 characters."""
    if copy == 0:
        return users
    prefix = f"S{copy:03d}".encode()
    return np.array([prefix + u[-(ID_LENGTH - len(prefix)):] for u in users], dtype=object)


def _fresh_product_ids(catalog: np.ndarray, copies: int, seed: int) -> List[np.ndarray]:
    """Per copy, the new id of each catalog product (copy 0: the ids as they are): ids drawn
    without replacement from the catalog's own range (the schema's int_domain), none of them a
    catalog id or another copy's."""
    needed = (copies - 1) * len(catalog)
    fresh = heavy_data.fresh_product_ids(catalog, needed, int(catalog.min()), int(catalog.max()),
                                         np.random.default_rng(seed))
    return [catalog] + [fresh[c * len(catalog):(c + 1) * len(catalog)] for c in range(copies - 1)]


def scaled_data(source_dir: str, out_dir: str, k: int, heavy_users: int = 0, seed: int = 0) -> Dict[str, int]:
    """Writes the ASOS files k times over into `out_dir` (replaced): copy c has every user and
    product of the sample under fresh ids and the same purchases between them; plus
    `heavy_users` heavy users per copy (log-uniform 100..5,000 purchases of that copy's
    products). Returns the counts (train and eval rows, users, catalog products)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    catalog = heavy_data.read_catalog(os.path.join(source_dir, configs.CATALOG_FILE))
    splits = {name: pq.read_table(os.path.join(source_dir, name), columns=[features.USER_KEY, features.PRODUCT_KEY])
              for name in (configs.TRAIN_FILE, configs.EVAL_FILE)}
    listed_users = np.array(sorted(set().union(*(t[features.USER_KEY].to_pylist() for t in splits.values()))),
                            dtype=object)  # every user of the purchases
    product_ids = _fresh_product_ids(catalog, k, seed)
    order = np.argsort(catalog)
    out: Dict[str, List[Tuple[np.ndarray, np.ndarray]]] = {name: [] for name in splits}
    catalogs, user_lists = [], []
    heavy_counts = heavy_data.heavy_tail_counts(heavy_users * k, seed=seed) if heavy_users else []
    for c in range(k):
        new_ids = product_ids[c]
        for name, table in splits.items():
            users = np.asarray(table[features.USER_KEY].to_pylist(), dtype=object)
            products = table[features.PRODUCT_KEY].to_numpy().astype(np.int64)
            at = order[np.searchsorted(catalog, products, sorter=order)]
            out[name].append((_copy_user_ids(users, c), new_ids[at]))
        catalogs.append(new_ids)
        user_lists.append(_copy_user_ids(listed_users, c))
        if heavy_users:
            counts = heavy_counts[c * heavy_users:(c + 1) * heavy_users]
            added = heavy_data.heavy_purchases(new_ids, counts, seed=seed + c, first_user=c * heavy_users)
            for name, split in ((configs.TRAIN_FILE, "train"), (configs.EVAL_FILE, "eval")):
                out[name].append((np.array(added[split][features.USER_KEY], dtype=object),
                                  np.array(added[split][features.PRODUCT_KEY], np.int64)))
            user_lists.append(np.array(heavy_data.heavy_user_ids(heavy_users, c * heavy_users), dtype=object))
    all_users = np.concatenate(user_lists)
    if len(set(all_users.tolist())) != len(all_users):
        raise ValueError("the copies' user ids collide: change the copy prefix")
    counts = {}
    for name, parts in out.items():
        schema = splits[name].schema
        users = np.concatenate([u for u, _ in parts])
        products = np.concatenate([p for _, p in parts])
        pq.write_table(pa.table({
            features.USER_KEY: pa.array(users.tolist(), schema.field(features.USER_KEY).type),
            features.PRODUCT_KEY: pa.array(products, schema.field(features.PRODUCT_KEY).type)}),
            os.path.join(out_dir, name))
        counts["train" if name == configs.TRAIN_FILE else "eval"] = len(users)
    with open(os.path.join(out_dir, configs.CATALOG_FILE), "w") as f:
        f.write("".join(f"{p}\n" for p in np.concatenate(catalogs)))
    counts.update(users=len(all_users), products=k * len(catalog))
    return counts


# --- The runs ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(path: Optional[str]) -> Iterator[None]:
    if not path:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_bare(data_dir: str, out_dir: str) -> Dict:
    """benchmarks/bare_pipeline.py in a process of its own: its figures and its wall time."""
    start = time.time()
    done = subprocess.run([sys.executable, os.path.join("benchmarks", "bare_pipeline.py"), data_dir, out_dir],
                          cwd=configs.PROJECT_DIR, capture_output=True, text=True)
    wall = time.time() - start
    if done.returncode != 0:
        raise RuntimeError(f"bare_pipeline.py failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall}


def measure(k: int, args) -> Dict:
    data_dir = os.path.join(args.output_root, f"data-k{k}")
    counts = scaled_data(args.data_dir, data_dir, k, heavy_users=args.heavy_tail, seed=args.seed)
    print(f"[scale] k={k}: {counts['train']:,} train and {counts['eval']:,} eval purchases, "
          f"{counts['users']:,} users, {counts['products']:,} products ({data_dir})", flush=True)
    output_dir = os.path.join(args.output_root, f"run-k{k}")
    shutil.rmtree(output_dir, ignore_errors=True)
    with _locked(args.lock):
        code, wall, components, console = run_local(
            data_dir, output_dir, ["--no-cache", "--skip-checksums", *args.run_arg])
    print(f"[scale] k={k}: pipeline exit {code}, {wall:.1f} s", flush=True)
    if code != 0:
        print(console[-4000:], flush=True)
    result = {"k": k, "counts": counts, "pipeline": {"exit_code": code, "wall": wall, "components": components,
                                                      "gate": _gate_lines(console)}}
    if not args.skip_bare:
        with _locked(args.lock):
            result["bare"] = run_bare(data_dir, os.path.join(args.output_root, f"bare-k{k}"))
        print(f"[scale] k={k}: bare script {result['bare']['wall']:.1f} s", flush=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    with open(os.path.join(args.output_root, f"results-k{k}.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


def _gate_lines(console: str) -> List[str]:
    lines = console.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("[gate]")), None)
    if start is None:
        return []
    # the verdict (on two lines when longer than the console's 100 columns), the header, 5 rows
    header = next((i for i in range(start, len(lines)) if lines[i].startswith("metric ")), start + 1)
    return lines[start:header + 6]


# --- The table ---------------------------------------------------------------------------------
def exponent(t1: float, t2: float, k1: int, k2: int) -> float:
    """The growth exponent between two sizes: log(t2 / t1) / log(k2 / k1)."""
    if not (t1 > 0 and t2 > 0) or k1 == k2:
        return float("nan")
    return math.log(t2 / t1) / math.log(k2 / k1)


def table(results: Sequence[Dict]) -> List[str]:
    sizes = [r["k"] for r in results]
    lines = ["  " + " ".join(f"k={r['k']}: {r['counts']['train'] + r['counts']['eval']:,} purchases, "
                             f"{r['counts']['users']:,} users, {r['counts']['products']:,} products;"
                             for r in results)]
    head = "".join(f"{f'k={k} s':>9}{'GiB':>6}" for k in sizes)
    growth = "".join(f"{f'{a}->{b}':>7}" for a, b in zip(sizes, sizes[1:]))
    lines.append(f"  {'component':<30}{head}   exponent {growth}")
    by_name = [{c["name"]: c for c in r["pipeline"]["components"]} for r in results]
    names = list(dict.fromkeys(c["name"] for r in results for c in r["pipeline"]["components"]))
    flagged: Dict[str, List[float]] = {}
    for name in names:
        cells, seconds = "", []
        for figures in by_name:
            c = figures.get(name)
            seconds.append(c["seconds"] if c else float("nan"))
            cells += (f"{c['seconds']:>9.1f}{c['peak_bytes'] / memory.GIB:>6.1f}" if c else f"{'-':>9}{'-':>6}")
        exps = [exponent(seconds[i], seconds[i + 1], sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
        lines.append(f"  {name:<30}{cells}   {'':>8} " + "".join(f"{e:>7.2f}" for e in exps))
        if exps and max(exps[-1:]) > SUPERLINEAR and seconds[-1] > 5:
            flagged[name] = exps
    walls = [r["pipeline"]["wall"] for r in results]
    lines.append(f"  {'whole run (wall)':<30}" + "".join(f"{w:>9.1f}{'':>6}" for w in walls) + f"   {'':>8} "
                 + "".join(f"{exponent(walls[i], walls[i + 1], sizes[i], sizes[i + 1]):>7.2f}"
                           for i in range(len(sizes) - 1)))
    if all("bare" in r for r in results):
        bare = [r["bare"]["wall"] for r in results]
        lines.append(f"  {'bare script (wall)':<30}" + "".join(
            f"{w:>9.1f}{r['bare']['peak_bytes'] / memory.GIB:>6.1f}" for w, r in zip(bare, results)) + f"   {'':>8} "
            + "".join(f"{exponent(bare[i], bare[i + 1], sizes[i], sizes[i + 1]):>7.2f}" for i in range(len(sizes) - 1)))
        lines.append(f"  {'pipeline / bare':<30}" + "".join(f"{w / b:>9.2f}{'':>6}" for w, b in zip(walls, bare)))
    lines.append("")
    expected = {n: e for n, e in flagged.items() if n in CATALOG_SCORING}
    unexpected = {n: e for n, e in flagged.items() if n not in CATALOG_SCORING}
    for name, exps in expected.items():
        lines.append(f"  super-linear: {name} (exponent {exps[-1]:.2f}): users x products, {CATALOG_SCORING[name]}")
    for name, exps in unexpected.items():
        lines.append(f"  UNEXPECTED super-linear: {name} (exponent {exps[-1]:.2f})")
    if not flagged:
        lines.append("  no component grows faster than the data")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=configs.default_data_dir(), help="the ASOS files")
    p.add_argument("--output-root", default="/tmp/scale-benchmark",
                   help="data, runs and results per size go here; default %(default)s")
    p.add_argument("--sizes", default="1,2,4", help="the k to run, comma-separated; default %(default)s")
    p.add_argument("--heavy-tail", type=int, default=0, metavar="N",
                   help="heavy users added per copy (100 to 5,000 purchases each, log-uniform)")
    p.add_argument("--run-arg", action="append", default=[], metavar="FLAG",
                   help="one more flag of local_runner.py for every run (repeatable), e.g. --run-arg=--eval-users=5000")
    p.add_argument("--skip-bare", action="store_true", help="no bare script runs")
    p.add_argument("--lock", help="flock this file around each run (e.g. /tmp/recsys-heavy.lock)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table-only", action="store_true", help="print the table of the results kept in --output-root")
    args = p.parse_args(argv)
    sizes = sorted({int(k) for k in args.sizes.split(",")})
    if not sizes or sizes[0] < 1:
        p.error("--sizes are whole numbers >= 1")
    os.makedirs(args.output_root, exist_ok=True)
    if args.table_only:
        results = []
        for path in sorted(glob.glob(os.path.join(args.output_root, "results-k*.json"))):
            with open(path) as f:
                results.append(json.load(f))
        results = sorted((r for r in results if r["k"] in sizes), key=lambda r: r["k"])
    else:
        print(f"[scale] sizes {sizes}; {os.cpu_count()} cores, {memory.gib(memory.machine_memory())}; "
              f"output {args.output_root}", flush=True)
        results = [measure(k, args) for k in sizes]
    print("\n".join(table(results)))
    return 0 if all(r["pipeline"]["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
