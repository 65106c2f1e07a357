"""End to end on generated data: new data arriving run after run, the served model as the
baseline of each (components/baseline.py) and the Trainer warm-starting from it by product id.

Three deliveries of purchases in a row (the flat layout, its train file replaced: a span each),
each with products new to it and products gone from it; the first starts cold, the next two
warm from the model the run before pushed. A second run with nothing changed comes whole from
the cache. A rollback-like change of the served version (an earlier version published again,
as DECISIONS D2 says) is the next run's baseline. A served model of another embedding size is
not warm-started from, and the console says why."""

import io
import json
import os
import re
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

import local_runner
from benchmarks import replay
from components import evaluator
from models import features, trainer
from models import model as model_lib
from pipeline import configs
from runner import console
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e
SMALL = {"embedding_dim": 8, "epochs": 3, "batch_size": 64, "learning_rate": 0.05}
# what is tested is which model is the baseline and how training starts: every model passes
GATE = configs.GateConfig(lower_bounds={"recall_at_10": 0.0, "sampled_accuracy": 0.0}, max_relative_drop=1.0,
                          popularity_margin=None)


def _deliveries(source_dir):
    """Three deliveries of the generated train purchases (seeded, the first bigger, as the
    replay splits), each made to have new and gone products: the second also buys catalog
    products nobody bought before, and the third leaves out the first's most bought product."""
    table = pq.read_table(os.path.join(source_dir, configs.TRAIN_FILE)).to_pydict()
    users = np.asarray(table[features.USER_KEY], dtype=object)
    products = np.asarray(table[features.PRODUCT_KEY], np.int64)
    parts = [(users[rows], products[rows]) for rows in replay.split_into_spans(len(users), 3, seed=1)]
    catalog = [int(line) for line in open(os.path.join(source_dir, configs.CATALOG_FILE))]
    unsold = [p for p in catalog if p not in set(products.tolist())]
    u2, p2 = parts[1]
    parts[1] = (np.concatenate([u2, u2[:len(unsold)]]), np.concatenate([p2, unsold[:len(u2)]]))
    top = np.bincount(np.searchsorted(np.unique(parts[0][1]), parts[0][1])).argmax()
    gone = np.unique(parts[0][1])[top]
    u3, p3 = parts[2]
    parts[2] = (u3[p3 != gone], p3[p3 != gone])
    return parts


def _deliver(data_dir, part):
    fake_asos.write_purchases(os.path.join(data_dir, configs.TRAIN_FILE), *part)


def _facts(config, execution=-1):
    [uri] = helpers.output_uris(config, "Trainer", "model", execution)
    with open(os.path.join(uri, "Format-Serving", trainer.TRAINING_FACTS)) as f:
        return json.load(f)


def _versions(config):
    return sorted(os.listdir(config.serving_model_dir), key=int)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm")
    source, data = root / "source", root / "data"
    fake_asos.write_fake_asos(str(source), num_users=300, num_products=70)
    shutil.copytree(source, data)
    parts = _deliveries(str(source))
    config = helpers.test_config(str(data), str(root / "out"), gate=GATE,
                                 training=configs.TrainingConfig(overrides=SMALL, serving_top_k=20))
    seen = {}
    for k, part in enumerate(parts):
        _deliver(str(data), part)
        helpers.run(config)
        seen[f"delivery {k + 1}"] = (_facts(config), _versions(config))
        if k == 0:
            helpers.run(config)  # nothing changed
            seen["rerun"] = helpers.executions(config)
    # a rollback-like change: the first version published again under a new version number
    first = _versions(config)[0]
    rolled_back = str(int(_versions(config)[-1]) + 1)
    shutil.copytree(os.path.join(config.serving_model_dir, first),
                    os.path.join(config.serving_model_dir, rolled_back))
    helpers.run(config)
    seen["after rollback"] = (_facts(config), rolled_back)
    # a model of another size: through the command line, to see what the console says
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", str(data), "--output-dir", str(root / "out"), "--skip-checksums",
                              *[f"--model-param={k}={v}" for k, v in {**SMALL, "embedding_dim": 16}.items()],
                              "--gate-bound", "recall_at_10=0", "--gate-bound", "sampled_accuracy=0",
                              "--gate-popularity-margin", "off",
                              "--serving-top-k", "20"], stream=stream)
    seen["incompatible"] = (code, stream.getvalue(), _facts(config))
    return config, parts, seen


def _vocab(part):
    return set(np.unique(part[1]).tolist())


def test_the_first_delivery_starts_cold_with_no_baseline(runs):
    config, parts, seen = runs
    facts, versions = seen["delivery 1"]
    assert facts["start"]["kind"] == "cold" and facts["start"]["reason"] == "no model is served yet"
    assert facts["baseline"]["version"] is None and len(versions) == 1
    assert facts["data"]["rows"] == len(parts[0][0]) and facts["data"]["products"] == len(_vocab(parts[0]))
    assert facts["data"]["input_fingerprint"].startswith("split:train,num_files:1,")
    assert facts["training_key"] and facts["code_fingerprint"] and facts["model"]["preset"] == "default"


def test_a_rerun_with_nothing_changed_comes_whole_from_the_cache(runs):
    _, _, seen = runs
    for node, states in seen["rerun"].items():
        assert states == ["COMPLETE", "CACHED"], (node, states)


@pytest.mark.parametrize("k", [2, 3])
def test_each_delivery_warm_starts_from_the_model_served_before_it(runs, k):
    config, parts, seen = runs
    facts, versions = seen[f"delivery {k}"]
    _, before = seen[f"delivery {k - 1}"]
    start = facts["start"]
    assert start["kind"] == "warm" and start["from_version"] == before[-1]
    assert facts["baseline"]["version"] == before[-1] == facts["baseline"]["served_version"]
    now, then = _vocab(parts[k - 1]), _vocab(parts[k - 2])
    assert (start["carried_products"], start["new_products"], start["dropped_products"]) == (
        len(now & then), len(now - then), len(then - now))
    assert start["new_products"] > 0 and start["dropped_products"] > 0
    # it trains on the purchases the served model has not: those of this delivery that the one
    # before it did not have (ModelConfig.warm_start_epochs: one pass over them), and rehearses
    # the others only when the served model was warm-started itself (delivery 2's, not 1's)
    seen_pairs = set(zip(*[a.tolist() for a in parts[k - 2]]))
    fresh = sum((u, p) not in seen_pairs for u, p in zip(*[a.tolist() for a in parts[k - 1]]))
    assert start["new_purchases"] == fresh and 0 < fresh <= facts["data"]["rows"]
    rehearsal = 0.0 if k == 2 else model_lib.DEFAULT.warm_start_rehearsal
    assert start["rehearsal"] == rehearsal
    assert start["rehearsed_purchases"] == min(facts["data"]["rows"] - fresh, round(rehearsal * fresh))
    # the train file is replaced: the window never holds all the served model trained on, and the
    # chain goes on (models/warm_start.py `chain_ended`)
    assert start["chain"] == k - 1
    assert facts["training"]["epochs"] == 1.0
    assert len(versions) == len(before) + 1  # every candidate passes this test's gate


def test_the_candidate_is_judged_against_the_served_model(runs):
    config, _, seen = runs
    # executions of the Evaluator: delivery 1, the rerun (cached), 2, 3, after the rollback, ...
    [evaluation] = helpers.output_uris(config, "Evaluator", "evaluation", execution=3)
    gate = evaluator.gate_verdict(evaluation)
    assert gate["has_baseline"] and gate["values"][evaluator.BASELINE]
    _, table = evaluator.gate_report(evaluation)
    assert "compared with the served model" in table and "vs served" in table
    [first] = helpers.output_uris(config, "Evaluator", "evaluation", execution=0)
    assert not evaluator.gate_verdict(first)["has_baseline"]


def test_a_rollback_like_change_of_the_served_version_is_the_next_baseline(runs):
    _, _, seen = runs
    facts, rolled_back = seen["after rollback"]
    assert facts["baseline"]["version"] == rolled_back
    assert facts["start"]["kind"] == "warm" and facts["start"]["from_version"] == rolled_back


def test_an_incompatible_served_model_means_a_cold_start_said_on_the_console(runs):
    _, _, seen = runs
    code, text, facts = seen["incompatible"]
    assert code in (console.EXIT_OK, console.EXIT_REFUSED), text  # the default 1% drop bound applies
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "cold start" in line)
    # with the lines it goes on on (the console's 100 columns: runner/console.py fit_text)
    more = next((i for i in range(at + 1, len(lines)) if not lines[i].startswith(" " * len("[train] "))),
                len(lines))
    line = " ".join(" ".join(lines[at:more]).split())
    assert re.fullmatch(r"\[train\] cold start: version \d+ cannot be warm-started from: it has "
                        r"embedding_dim=8, this one 16", line), line
    assert all(len(said) <= console.WIDTH for said in lines[at:more])
    assert facts["start"]["kind"] == "cold" and facts["start"]["reason"].startswith("incompatible: ")
    assert facts["baseline"]["version"]  # the gate still compares with the served model
    assert "compared with the served model" in text
