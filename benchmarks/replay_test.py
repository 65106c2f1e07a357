"""The replay's split into spans, its verdict on the warm start's target, and its quiet console."""

import copy
import json
import os
import signal
import sys
import time

import numpy as np
import pytest

from benchmarks import replay
from pipeline import configs


def test_the_spans_are_a_seeded_partition_with_a_bigger_first_span():
    spans = replay.split_into_spans(1000, spans=4, first_share=0.4, seed=0)
    assert [len(s) for s in spans] == [400, 200, 200, 200]
    assert np.array_equal(np.sort(np.concatenate(spans)), np.arange(1000))  # every row once
    assert all(np.array_equal(a, b) for a, b in zip(spans, replay.split_into_spans(1000, 4, 0.4, 0)))
    assert not np.array_equal(spans[0], replay.split_into_spans(1000, 4, 0.4, 1)[0])
    assert [len(s) for s in replay.split_into_spans(10, spans=1)] == [10]
    with pytest.raises(ValueError, match="first_share must be between 0 and 1"):
        replay.split_into_spans(10, spans=2, first_share=1.0)


def _run(kind, seconds, **metrics):
    return {"start": {"kind": kind}, "training_seconds": seconds,
            "metrics": {name: metrics.get(name, 0.1) for name in replay.GATED}}


def test_the_target_is_a_third_of_the_time_and_one_standard_error():
    se = {name: 0.01 for name in replay.GATED}
    met = {"span": 2, "warm": _run("warm", 3.0, recall_at_10=0.095), "cold": _run("cold", 9.0), "cold_se": se}
    slow = {"span": 3, "warm": _run("warm", 3.5), "cold": _run("cold", 9.0), "cold_se": se}
    worse = {"span": 4, "warm": _run("warm", 1.0, ndcg_at_10=0.085), "cold": _run("cold", 9.0), "cold_se": se}
    lines = replay.comparison_lines([met, slow, worse])
    assert lines[-9:] == [
        "span 2: target met; 3.0 s vs 9.0 s (0.33)",
        "    recall_at_10 0.0950 vs 0.1000 ± 0.0100; ndcg_at_10 0.1000 vs 0.1000 ± 0.0100",
        "    sampled_accuracy 0.1000 vs 0.1000 ± 0.0100",
        "span 3: target NOT met; 3.5 s vs 9.0 s (0.39, over a third)",
        "    recall_at_10 0.1000 vs 0.1000 ± 0.0100; ndcg_at_10 0.1000 vs 0.1000 ± 0.0100",
        "    sampled_accuracy 0.1000 vs 0.1000 ± 0.0100",
        "span 4: target NOT met; 1.0 s vs 9.0 s (0.11)",
        "    recall_at_10 0.1000 vs 0.1000 ± 0.0100; ndcg_at_10 0.0850 vs 0.1000 ± 0.0100 (below)",
        "    sampled_accuracy 0.1000 vs 0.1000 ± 0.0100"]
    assert met["target_met"] and not slow["target_met"] and not worse["target_met"]
    assert all(len(line) <= replay.WIDTH for line in lines)


def test_a_refusal_is_told_by_the_gates_failed_rows():
    rows = [  # a run report's gate.rows (components/evaluator.py gate_rows)
        {"metric": "recall_at_10", "kind": "value", "candidate": 0.0204, "baseline": 0.0321,
         "popularity": 0.0185, "threshold": ">= 0, drop <= 1.0% vs served", "result": "FAILED"},
        {"metric": "recall_at_10_over_popularity", "kind": "margin", "of": "recall_at_10",
         "candidate": 0.102, "threshold": ">= +10.0% over popularity", "result": "ok"},
        {"metric": "recall_at_100", "kind": "value", "candidate": 0.0741, "threshold": "not gated",
         "result": "-"},
        {"metric": "sampled_accuracy_over_popularity", "kind": "margin", "of": "sampled_accuracy",
         "candidate": 0.013, "threshold": ">= +10.0% over popularity", "result": "FAILED"},
        {"metric": "ndcg_at_10", "kind": "value", "candidate": None, "threshold": ">= 0",
         "result": "FAILED (no value)"},
    ]
    assert replay.refusal_reasons(rows) == [
        ("recall_at_10 0.0204 vs served 0.0321 (-36.4%)", "wants >= 0, drop <= 1.0% vs served"),
        ("sampled_accuracy vs popularity +1.3%", "wants >= +10.0% over popularity"), ("ndcg_at_10: no value", "")]
    assert replay.refusal_reasons([]) == [("see its log", "")]
    refused = {"rows": {"train": 900, "eval": 300}, "start": {"kind": "warm", "from_version": 7},
               "data": {"window_spans": [2, 3, 4]}, "training_seconds": 1.2,
               "metrics": {name: 0.02 for name in replay.GATED}, "blessed": False, "pushed": False,
               "version": None, "gate_rows": rows[:1]}
    assert replay.span_lines(4, {"code": 3, "summary": {"drift": "within"}, "console": ""}, refused) == [
        "span 4 (window 2-4): warm from 7; refused by the gate",
        "    rows train 900, eval 300; trained in 1.2 s",
        "    drift within",
        "    recall_at_10 0.0200, ndcg_at_10 0.0200, sampled_accuracy 0.0200",
        "    refused: recall_at_10 0.0204 vs served 0.0321 (-36.4%); wants >= 0, drop <= 1.0% vs served"]
    # with the interval of the change (components/evaluator.py gate_rows' "vs_served")
    rows[0]["vs_served"] = {"change": -0.364, "low": -0.45, "high": -0.28, "allowed": 0.01, "result": "FAILED"}
    assert replay.refusal_reasons(rows[:1]) == [
        ("recall_at_10 0.0204 vs served 0.0321 (-36.4%, 95% interval -45.0% to -28.0%)",
         "wants >= 0, drop <= 1.0% vs served")]


# drift.json of span 2 against span 1 in `make replay` on the ASOS data (2026-12-07), the files'
# paths shortened: every measure within its threshold
DRIFT = {
    "compared": True, "drifted": False,
    "newest": {"span": 2, "name": "span-2", "rows": 33008, "users": 20240, "files": ["/r/data/span-2/train.parquet"]},
    "previous": {"span": 1, "name": "span-1", "rows": 66017, "users": 29997,
                 "files": ["/r/data/span-1/train.parquet"]},
    "measures": [
        {"name": "productId L-infinity distance", "value": 0.0016474, "limit": "<= 0.006", "over": False,
         "detail": ""},
        {"name": "productId Jensen-Shannon divergence", "value": 0.2519107, "limit": "<= 0.6", "over": False,
         "detail": ""},
        {"name": "rows, newest / previous", "value": 0.4999924, "limit": "0.4 to 2.5", "over": False,
         "detail": "33,008 vs 66,017 rows"},
        {"name": "purchases per user, Jensen-Shannon divergence", "value": 0.0001918, "limit": "<= 0.005",
         "over": False, "detail": ""},
        {"name": "top 1% of users' share of purchases, newest / previous", "value": 0.8869, "limit": "0.667 to 1.5",
         "over": False, "detail": ""},
        {"name": "dummyUserId L-infinity distance", "value": 0.0020049, "limit": "<= 0.02", "over": False,
         "detail": ""},
        {"name": "purchases repeated from the previous span", "value": 0.0, "limit": "<= 0.5", "over": False,
         "detail": ""}],
    "heaviest_buyer": "the heaviest buyer of span-2: mnO88eKCCw7NMJ8Ljlrz, 10 purchases (0.03%)",
    "repeats": {"identical_files": [], "rows": 0, "share_over": False, "users": 0, "half_users": 0, "top_users": []}}
# the console's summary row of that run (runner/console.py drift_lines), as summary_rows reads it
DRIFT_SUMMARY = "span-2 vs span-1 within the thresholds"


def test_a_span_reads_on_100_columns_naming_only_the_drift_measures_over_their_limit():
    """Found by exploratory testing: a span's line ran to about 400 characters with every drift
    measure within its threshold, 600 with some over; replay.json keeps every figure."""
    pushed = {"rows": {"train": 99025, "eval": 35567}, "start": {"kind": "warm", "from_version": "1796650591"},
              "data": {"window_spans": [1, 2]}, "training_seconds": 1.0,
              "metrics": {"recall_at_10": 0.0218, "ndcg_at_10": 0.0132, "sampled_accuracy": 0.1121},
              "blessed": True, "pushed": True, "version": "1796650686", "gate_rows": [], "drift_figures": DRIFT}
    ran = {"code": 0, "summary": {"drift": DRIFT_SUMMARY}, "console": ""}
    assert replay.span_lines(2, ran, pushed) == [
        "span 2 (window 1-2): warm from 1796650591; pushed 1796650686",
        "    rows train 99,025, eval 35,567; trained in 1.0 s",
        "    drift span-2 vs span-1 within the thresholds",
        "    recall_at_10 0.0218, ndcg_at_10 0.0132, sampled_accuracy 0.1121"]
    over = copy.deepcopy(DRIFT)
    over["accepted"] = "--accept-drift"
    over["measures"][0].update(value=0.0073192, over=True)
    over["measures"][2].update(value=0.30, over=True)
    over["stopped_spans"] = [{"name": "span-1"}]
    refused = dict(pushed, drift_figures=over, blessed=False, pushed=False, version=None, gate_rows=[
        {"metric": "recall_at_10", "kind": "value", "candidate": 0.0204, "baseline": 0.0321,
         "threshold": ">= 0, drop <= 1.0% vs served", "result": "FAILED",
         "vs_served": {"change": -0.364, "low": -0.45, "high": -0.28}},
        {"metric": "ndcg_at_10", "kind": "value", "candidate": 0.0121, "baseline": 0.0190,
         "threshold": ">= 0, drop <= 1.0% vs served", "result": "FAILED",
         "vs_served": {"change": -0.363, "low": -0.44, "high": -0.29}}])
    lines = replay.span_lines(2, {"code": 3, "summary": {"drift": "(long)"}, "console": ""}, refused)
    assert lines == [
        "span 2 (window 1-2): warm from 1796650591; refused by the gate",
        "    rows train 99,025, eval 35,567; trained in 1.0 s",
        "    drift span-2 vs span-1 OVER the thresholds, span-1 stopped before, accepted (--accept-drift)",
        "      over: productId L-infinity distance 0.007319, allowed <= 0.006",
        "      over: rows, newest / previous 0.3, allowed 0.4 to 2.5",
        "    recall_at_10 0.0218, ndcg_at_10 0.0132, sampled_accuracy 0.1121",
        "    refused: recall_at_10 0.0204 vs served 0.0321 (-36.4%, 95% interval -45.0% to -28.0%)",
        "      wants >= 0, drop <= 1.0% vs served",
        "    refused: ndcg_at_10 0.0121 vs served 0.0190 (-36.3%, 95% interval -44.0% to -29.0%)",
        "      wants >= 0, drop <= 1.0% vs served"]
    assert all(len(line) <= replay.WIDTH for line in lines)
    # a run report without the drift figures: the verdict of the summary's row
    older = dict(pushed, drift_figures=None)
    lines = replay.span_lines(2, ran, older)
    assert lines[2] == "    drift span-2 vs span-1 within the thresholds"
    assert all(len(line) <= replay.WIDTH for line in lines)


def test_its_own_tensorflow_lines_go_to_its_log_and_errors_still_reach_the_console(tmp_path, capfd):
    log = tmp_path / "replay.txt"
    with replay.stderr_to(str(log)):
        os.write(2, b"I0000 cpu_feature_guard.cc: This TensorFlow binary is optimized\n")
    os.write(2, b"after\n")
    assert "cpu_feature_guard" in log.read_text() and "after" not in log.read_text()
    assert capfd.readouterr().err == "after\n"
    with pytest.raises(RuntimeError):
        with replay.stderr_to(str(log)):
            raise RuntimeError("boom")
    os.write(2, b"restored\n")
    assert capfd.readouterr().err == "restored\n"


def test_a_run_that_wrote_no_report_has_no_figures_not_the_runs_before_it(tmp_path, monkeypatch):
    """Found by exploratory testing: span 2 stopped by the drift gate (exit 4) was printed, and
    kept in replay.json, with span 1's window, metrics and pushed version."""
    from types import SimpleNamespace

    from runner import metadata

    earlier = {node: [SimpleNamespace(create_time_since_epoch=1_000)] for node in ("RunReport", "Trainer")}
    monkeypatch.setattr(metadata, "node_executions", lambda config: earlier)
    monkeypatch.setattr(metadata, "output_uris", lambda *a, **k: pytest.fail("read an earlier run's outputs"))
    assert replay.run_figures(str(tmp_path), since_ms=2_000) == {}


def test_a_span_the_drift_gate_stopped_says_its_measures_over_their_limit(tmp_path):
    """Found by exploratory testing: a span the gate stopped printed the gate's message, 14 lines
    of 100 columns (its advice to --accept-drift, the TFDV detail, the kept files' path); the
    replay reads the figures the gate kept, as it reads a span's that went through."""

    stopped = copy.deepcopy(DRIFT)  # span 4 of a replay with --drift-threshold product_l_infinity=0.003
    stopped.update(drifted=True, newest={"span": 4, "name": "span-4"}, previous={"span": 3, "name": "span-3"},
                   stopped_spans=[{"span": 3, "name": "span-3", "stopped": "2026-12-07T13:51:28+00:00",
                                   "against": "span-2",
                                   "why": "productId L-infinity distance 0.003742, allowed <= 0.003"}])
    stopped["measures"][0].update(value=0.0035551, limit="<= 0.003", over=True)
    lines = replay.span_lines(4, {"code": 4, "summary": {}, "console": DRIFT_STOP}, {}, [2, 3, 4], stopped)
    assert lines == [
        "span 4 (window 2-4): exit 4, no model: stopped by the drift gate",
        "    drift span-4 vs span-3 over the thresholds",
        "      over: productId L-infinity distance 0.003555, allowed <= 0.003",
        "      span-3 stopped before, in the window: productId L-infinity distance 0.003742, allowed <= 0.003"]
    # where the gate keeps them: the newest written since the run started
    output_dir = tmp_path / "warm"
    kept = os.path.join(configs.PipelineConfig(output_dir=str(output_dir)).pipeline_root, "DriftGate", "rejected")
    assert replay.stopped_drift(str(output_dir)) is None
    for name, figures in (("16", DRIFT), ("29", stopped)):
        os.makedirs(os.path.join(kept, name))
        with open(os.path.join(kept, name, "drift.json"), "w") as f:
            json.dump(figures, f)
    os.utime(os.path.join(kept, "16", "drift.json"), (1_000, 1_000))  # an earlier run's
    assert replay.stopped_drift(str(output_dir), since_ms=2_000_000)["newest"]["name"] == "span-4"
    assert replay.stopped_drift(str(output_dir), since_ms=int(time.time() * 1000) + 60_000) is None


DRIFT_STOP = """  DriftGate                      failed    2.5 s

error: the data was rejected at DriftGate; nothing was trained or pushed (exit code 4):
  The newest span span-2 drifted from span-1 (thresholds: pipeline/configs.py DriftConfig)
  productId L-infinity distance: 0.007319, allowed <= 0.006
  (figures and TFDV's anomalies kept in /out/warm/pipeline_root/DriftGate/rejected/16)
full log: /out/warm/logs/run-20261207-103809.log
"""


def test_a_span_without_a_model_says_why():
    assert replay.span_lines(2, {"code": 4, "summary": {}, "console": DRIFT_STOP}, {}) == [
        "span 2: exit 4, no model",
        "    error: the data was rejected at DriftGate; nothing was trained or pushed (exit code 4):",
        "    The newest span span-2 drifted from span-1 (thresholds: pipeline/configs.py DriftConfig)",
        "    productId L-infinity distance: 0.007319, allowed <= 0.006",
        "    (figures and TFDV's anomalies kept in /out/warm/pipeline_root/DriftGate/rejected/16)"]
    usage = "usage: local_runner.py [-h]\nlocal_runner.py: error: argument --span-window: 0 is not a number\n"
    assert replay.failure_lines(usage) == ["local_runner.py: error: argument --span-window: 0 is not a number"]
    assert replay.failure_lines("") == ["-"]


@pytest.mark.parametrize("flags, said", [
    (["--spans", "0"], "--spans 0: a replay needs 1 span or more"),
    (["--window", "0"], "--window 0: a training window needs 1 span or more"),
    (["--first-share", "1.5"], "--first-share 1.5: the first span's share must be between 0 and 1"),
    (["--data-dir", "/nonexistent"], "--data-dir /nonexistent: no such directory"),
])
def test_bad_flags_are_usage_errors_before_anything_is_cleared(flags, said, tmp_path, capsys, write_fake_asos):
    data_dir, out = tmp_path / "data", tmp_path / "out"
    write_fake_asos(str(data_dir))
    out.mkdir()
    (out / replay.MARKER).write_text('{"spans": []}')  # an earlier replay: left as it is
    with pytest.raises(SystemExit) as stopped:
        replay.main(["--data-dir", str(data_dir), "--output-dir", str(out), *flags])
    assert stopped.value.code == 2 and said in capsys.readouterr().err
    assert sorted(os.listdir(out)) == [replay.MARKER]


def test_a_data_directory_without_the_files_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        replay.main(["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out")])
    assert stopped.value.code == 2
    assert (f"--data-dir {tmp_path}: no dsf_asos_train_with_alphanumeric_dummy_ids.parquet, "
            "dsf_asos_valid_with_alphanumeric_dummy_ids.parquet, dsf_asos_productIds.csv") in capsys.readouterr().err


FAKE_RUNNER = r'''
import os, signal, sys, time
mode = os.environ["FAKE_RUNNER_MODE"]
calls = os.path.join(os.environ["FAKE_RUNNER_DIR"], "calls")
with open(calls, "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
if mode.startswith("exit "):
    print("error: the fake run failed (exit code %s):\n  why it failed" % mode[5:])
    sys.exit(int(mode[5:]))
stops = []
signal.signal(signal.SIGINT, lambda *_: stops.append(1))
print("  Trainer                        running", flush=True)
if mode == "stop the replay":
    os.kill(os.getppid(), signal.SIGTERM)  # as `timeout` or a scheduler stops the replay
elif mode == "kill the replay":
    os.kill(os.getppid(), signal.SIGKILL)  # as the OOM killer or `kill -9` ends it
deadline = time.time() + 20
while not stops and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.3)  # a stopped run takes a moment to end: a second signal would land here
with open(os.path.join(os.environ["FAKE_RUNNER_DIR"], "stops"), "w") as f:
    f.write(str(len(stops)))
print("error: interrupted (exit code 130); nothing was pushed")
sys.exit(130 if stops else 0)
'''


@pytest.fixture
def fake_runner(tmp_path, monkeypatch, write_fake_asos):
    """The replay with a stand-in for local_runner.py (FAKE_RUNNER, told what to do by
    FAKE_RUNNER_MODE) on generated data; returns (run the replay: its exit code, the stand-in's
    directory)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "local_runner.py").write_text(FAKE_RUNNER)
    monkeypatch.setattr(replay, "PROJECT_DIR", str(project))
    monkeypatch.setenv("FAKE_RUNNER_DIR", str(project))
    write_fake_asos(str(tmp_path / "data"))

    def run(mode, *flags):
        monkeypatch.setenv("FAKE_RUNNER_MODE", mode)
        return replay.main(["--data-dir", str(tmp_path / "data"), "--output-dir", str(tmp_path / "out"),
                            "--spans", "3", *flags])
    return run, project


def test_a_stopped_replay_stops_its_run_once_waits_for_it_and_exits_130(fake_runner, tmp_path, capsys, monkeypatch):
    """Found by exploratory testing: a SIGTERM ended the replay alone (its run went on, orphaned,
    into the directory a replay started again cleared); a Ctrl-C ended it in a traceback, the
    run SIGKILLed a quarter of a second later and its console lost."""
    run, project = fake_runner
    monkeypatch.setattr(replay, "run_figures", lambda *a: pytest.fail("loaded TensorFlow for a stopped run"))
    assert run("stop the replay", "--no-cold") == 130
    assert (project / "stops").read_text() == "1"  # the run's Ctrl-C, once
    assert len((project / "calls").read_text().splitlines()) == 1  # no span after it
    out = capsys.readouterr().out
    assert "span 1 (window 1): exit 130, no model\n    error: interrupted (exit code 130); nothing was pushed" in out
    assert "[replay] interrupted during span 1 (warm run); exit code 130" in out
    assert "Trainer" in (tmp_path / "out" / "logs" / "span-1-warm.txt").read_text()  # its console kept
    record = json.loads((tmp_path / "out" / replay.MARKER).read_text())
    assert record["interrupted"] == {"span": 1, "chain": "warm"}
    assert record["spans"][0]["warm"]["exit_code"] == 130


KILLED_REPLAY = """
import sys
from benchmarks import replay
replay.PROJECT_DIR = sys.argv[1]
replay.main(["--data-dir", sys.argv[2], "--output-dir", sys.argv[3], "--spans", "3", "--no-cold"])
"""


def test_a_killed_replay_stops_its_run(tmp_path, write_fake_asos):
    """Found by exploratory testing: a SIGKILLed replay left its run going on, orphaned, into the
    output directory. The run now gets its Ctrl-C (the parent-death signal) and stops."""
    import subprocess

    project = tmp_path / "project"
    project.mkdir()
    (project / "local_runner.py").write_text(FAKE_RUNNER)
    write_fake_asos(str(tmp_path / "data"))
    env = {**os.environ, "FAKE_RUNNER_DIR": str(project), "FAKE_RUNNER_MODE": "kill the replay",
           "PYTHONPATH": configs.PROJECT_DIR}
    done = subprocess.run([sys.executable, "-c", KILLED_REPLAY, str(project), str(tmp_path / "data"),
                           str(tmp_path / "out")], env=env, cwd=configs.PROJECT_DIR, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    deadline = time.time() + 15  # the orphaned run ends by itself, the replay's death its Ctrl-C
    while not (project / "stops").exists() and time.time() < deadline:
        time.sleep(0.1)
    # stopped (not at its 20 s deadline); perhaps more than once: Linux sends the signal again each
    # time the orphan passes to another thread of the dying replay (numpy's), and a run's
    # InterruptWatch (runner/console.py) takes a Ctrl-C that comes again
    assert int((project / "stops").read_text()) >= 1
    assert len((project / "calls").read_text().splitlines()) == 1


def test_a_span_whose_data_is_rejected_is_an_outcome_another_failure_stops_the_replay(fake_runner, capsys):
    run, project = fake_runner
    assert run("exit 4", "--no-cold") == 0  # the drift gate stopped each span: the replay goes on
    assert len((project / "calls").read_text().splitlines()) == 3
    (project / "calls").unlink()
    assert run("exit 75") == 75  # e.g. another run holds the output directory
    assert len((project / "calls").read_text().splitlines()) == 1
    out = capsys.readouterr().out
    assert ("span 1 (window 1): exit 75, no model\n    error: the fake run failed (exit code 75):\n"
            "    why it failed") in out
    assert "[replay] stopped after span 1: its warm run failed with exit code 75" in out


def test_no_cold_run_after_a_warm_run_whose_data_was_rejected(fake_runner, tmp_path, capsys):
    """Found by exploratory testing: the cold run went on after the drift gate had rejected the
    warm run's data (about 20 s a span; the same data, rejected again)."""
    run, project = fake_runner
    assert run("exit 4") == 0
    calls = (project / "calls").read_text().splitlines()
    assert len(calls) == 3 and not any("--cold-start" in call for call in calls)  # warm runs only
    out = capsys.readouterr().out
    said = "  cold on the same window: not run: its data was rejected in the warm run (exit 4)"
    assert out.count(said) == 2  # spans 2 and 3; span 1 has no cold run
    record = json.loads((tmp_path / "out" / replay.MARKER).read_text())
    assert [entry.get("cold") for entry in record["spans"]] == [None] + [{"skipped": replay.COLD_SKIPPED}] * 2
    (project / "calls").unlink()
    assert run("exit 3") == 0  # refused by the gate: the cold comparison still runs
    assert sum("--cold-start" in call for call in (project / "calls").read_text().splitlines()) == 2


def test_no_cold_run_after_a_warm_run_that_trained_cold_itself(fake_runner, tmp_path, capsys, monkeypatch):
    """The model span 3 would start from ends a chain of warm starts (warm_start_max_chain): its
    warm run trains cold, the cold run would train it again. The comparison says why."""
    run, project = fake_runner
    chain = "version 2 ends 1 warm start in a row (warm_start_max_chain 1)"
    warm_starts = iter([{"kind": "cold", "reason": "no model is served yet"}, {"kind": "warm", "from_version": 1},
                        {"kind": "cold", "reason": chain}])

    def figures(output_dir, since_ms=0):
        start = next(warm_starts) if output_dir.endswith("warm") else {"kind": "cold", "reason": "--cold-start"}
        return {"rows": {"train": 10}, "start": start, "data": {}, "training_seconds": 1.0,
                "metrics": {name: 0.1 for name in replay.GATED}, "blessed": True, "pushed": True, "version": 1,
                "gate_rows": [], "model_dir": str(tmp_path)}
    monkeypatch.setattr(replay, "run_figures", figures)
    monkeypatch.setattr(replay, "standard_errors", lambda *_: {name: 0.01 for name in replay.GATED})
    assert run("exit 0") == 0
    calls = (project / "calls").read_text().splitlines()
    assert [("--cold-start" in call) for call in calls] == [False, False, True, False]  # span 2's cold run only
    out = capsys.readouterr().out
    assert "  cold on the same window: not run: the warm run trained cold itself" in out
    assert f"span 3: cold ({chain})" in out.splitlines()
    record = json.loads((tmp_path / "out" / replay.MARKER).read_text())
    assert record["spans"][2]["cold"] == {"skipped": replay.COLD_ITSELF}


def test_the_first_span_is_twice_the_others_so_the_drift_gate_takes_every_span_count():
    """Found by exploratory testing: with a fixed first share of 0.4, span 2 of 6 spans was 0.30
    times span 1 and the drift gate (rows at least 0.4 times the span before) stopped it."""

    assert replay.default_first_share(4) == 0.4  # the documented 4-span replay unchanged
    for k in range(2, 13):
        sizes = [len(s) for s in replay.split_into_spans(165_042, k, replay.default_first_share(k))]
        assert abs(sizes[1] / sizes[0] - 0.5) < 0.001
        assert configs.DEFAULT_DRIFT_THRESHOLDS["min_rows_ratio"] <= sizes[1] / sizes[0]


def test_a_span_line_names_the_window_the_replay_wrote():
    """Found by exploratory testing: with --layout flat (one train file: span 0 to the pipeline)
    every span said "window 0-0"; a window of one span said "window 1-1"."""
    assert replay.window_spans(1, 2) == [1] and replay.window_spans(4, 2) == [3, 4]
    assert replay.window_spans(2, 5) == [1, 2]
    flat = {"rows": {"train": 900, "eval": 300}, "start": {"kind": "warm", "from_version": 7},
            "data": {"window_spans": [0]}, "training_seconds": 1.2,
            "metrics": {name: 0.02 for name in replay.GATED}, "blessed": True, "pushed": True,
            "version": 8, "gate_rows": []}
    ran = {"code": 0, "summary": {}, "console": ""}
    assert replay.span_lines(3, ran, flat, replay.window_spans(3, 2))[0].startswith("span 3 (window 2-3): warm")
    assert replay.span_lines(1, ran, flat, [1])[0].startswith("span 1 (window 1): warm")
    stopped = {"code": 4, "summary": {}, "console": DRIFT_STOP}
    assert replay.span_lines(2, stopped, {}, [1, 2])[0] == "span 2 (window 1-2): exit 4, no model"


@pytest.mark.parametrize("spans", [2, 3, 4, 6])
def test_a_split_without_a_share_is_the_replays_for_every_span_count(spans):
    """benchmarks/warm_start.py and tests/test_warm_start.py split with no share given: the
    replay's first span, 2/(K+1), not the fixed 0.4 it had before (found: with 3 spans they
    split 40/30/30 while the replay split 50/25/25)."""
    own = replay.split_into_spans(165_042, spans)
    assert all(np.array_equal(a, b) for a, b in zip(
        own, replay.split_into_spans(165_042, spans, replay.default_first_share(spans))))
    assert abs(len(own[0]) / 165_042 - 2 / (spans + 1)) < 0.0001


@pytest.mark.parametrize("held", ["", "warm"])
def test_a_replay_refuses_a_directory_a_replay_or_a_run_is_using(held, fake_runner, tmp_path, capsys):
    """Found by exploratory testing: a replay started again cleared the directory a run went on
    writing into (its replay had been stopped), and the new runs took no lock the old run held."""
    from runner import run_lock

    run, project = fake_runner
    (tmp_path / "out" / "warm").mkdir(parents=True)
    (tmp_path / "out" / replay.MARKER).write_text('{"spans": []}')
    with run_lock.hold(str(tmp_path / "out" / held)):
        assert run("exit 0", "--no-cold") == 75
    assert f"error: another run is using {tmp_path / 'out' / held} (pid " in capsys.readouterr().err
    assert not (project / "calls").exists()
    assert set(os.listdir(tmp_path / "out")) - {".run.lock"} == {replay.MARKER, "warm"}  # nothing cleared
    assert run("exit 0", "--no-cold") == 0  # free again: cleared, and replayed
    assert len((project / "calls").read_text().splitlines()) == 3


def test_a_directory_that_is_not_a_replays_is_a_usage_error(fake_runner, tmp_path, capsys):
    run, project = fake_runner
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    with pytest.raises(SystemExit) as stopped:
        run("exit 0")
    assert stopped.value.code == 2 and "is not empty and not a replay's output" in capsys.readouterr().err
    assert os.listdir(tmp_path / "out") == ["mine.txt"]


def test_make_history_knows_a_replays_directory_by_its_marker():
    import versions

    assert versions.REPLAY_MARKER == replay.MARKER


@pytest.mark.e2e
def test_a_replay_on_generated_data_says_what_each_span_did(tmp_path, capsys, write_fake_asos):
    """Two spans through the pipeline: span 1 pushed; span 2 (a few hundred rows, noisier than
    the drift gate's thresholds allow) stopped by the drift gate, said so, with no figures of
    span 1's run taken for its own (found by exploratory testing)."""
    data_dir, out = tmp_path / "data", tmp_path / "out"
    write_fake_asos(str(data_dir), num_users=300, num_products=80, tastes=4)
    assert replay.main(["--data-dir", str(data_dir), "--output-dir", str(out), "--spans", "2", "--no-cold"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= replay.WIDTH for line in lines if str(tmp_path) not in line), lines
    at = lines.index(next(line for line in lines if line.startswith("span 1 ")))
    assert lines[at].startswith("span 1 (window 1): cold (no model is served yet); pushed ")
    assert lines[at + 1].startswith("    rows train 549, eval 165; trained in ") and lines[at + 2] == "    drift -"
    assert lines[at + 4] == "span 2 (window 1-2): exit 4, no model: stopped by the drift gate"
    assert lines[at + 5] == "    drift span-2 vs span-1 over the thresholds"
    assert lines[at + 6].startswith("      over: ")
    version = lines[at].rsplit("pushed ", 1)[1]
    record = json.loads((out / replay.MARKER).read_text())
    assert [entry["warm"]["exit_code"] for entry in record["spans"]] == [0, 4]
    assert str(record["spans"][0]["warm"]["version"]) == version
    assert record["spans"][0]["warm"]["drift_figures"] == {"compared": False, "newest": {"span": 1},
                                                          "reason": "one span only: nothing to compare"}
    assert "version" not in record["spans"][1]["warm"] and "metrics" not in record["spans"][1]["warm"]
    stopped = record["spans"][1]["warm"]  # every line of why, and the gate's every figure
    assert stopped["error"][0] == ("error: the data was rejected at DriftGate; nothing was trained or pushed "
                                   "(exit code 4):")
    # its last words: where the figures are kept (the path on a line of its own when the console's
    # 100 columns do not hold both: runner/console.py fit_text)
    last = " ".join(" ".join(stopped["error"][-2:]).split())
    assert "(figures and TFDV's anomalies kept in /" in last and last.endswith(")"), stopped["error"][-2:]
    assert stopped["drift_figures"]["drifted"] and stopped["drift_figures"]["newest"]["name"] == "span-2"
