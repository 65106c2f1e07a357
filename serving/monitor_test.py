"""make monitor on generated request logs: requests, cold starts and latencies counted exactly; the
popularity distance is TFDV's and crosses its threshold on a skewed request set, not on requests
drawn like the training purchases; the report files and exit codes."""

import io
import json
import os
import random
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from pipeline import configs
from serving import monitor, request_log

PRODUCTS = list(range(5000, 8000))  # 3,000 products, popularity 1/rank
TRAINING = {p: int(30000 / (rank + 1)) + 1 for rank, p in enumerate(PRODUCTS)}


def _served_model(base, counts=TRAINING, version=7):
    """A version directory with what the monitor reads of a serving SavedModel: its checkpoint's
    product ids and training counts (and a saved_model.pb, which makes the version complete)."""
    directory = os.path.join(base, str(version))
    os.makedirs(os.path.join(directory, "variables"))
    values = {"product_ids": tf.Variable(np.array(list(counts), np.int64))}
    if counts:
        values["product_counts"] = tf.Variable(np.array(list(counts.values()), np.int64))
    tf.train.Checkpoint(**values).write(os.path.join(directory, "variables", "variables"))
    open(os.path.join(directory, "saved_model.pb"), "wb").close()
    return directory


def _pair(signature, ids, known):
    request, response = predict_pb2.PredictRequest(), predict_pb2.PredictResponse()
    request.model_spec.signature_name = signature
    key, dtype = ("item", np.int64) if signature == monitor.ITEM_SIGNATURE else ("user_id", object)
    request.inputs[key].CopyFrom(tf.make_tensor_proto(np.array(ids, dtype)))
    response.outputs[monitor.KNOWN[signature]].CopyFrom(tf.make_tensor_proto(np.array(known, bool)))
    return request, response


def _log(prefix, requests):
    """Writes (signature, ids, known, latency_seconds) requests through the server's logger."""
    logger = request_log.RequestLogger("recommender", request_log.logging_config(str(prefix), 1.0))
    for signature, ids, known, latency in requests:
        logger.log(lambda s=signature, i=ids, k=known: _pair(s, i, k), 7, signature, latency, "rest")
    logger.close()


def test_tfdv_distances_are_the_documented_ones_and_numpy_agrees():
    current, baseline = {1: 20, 2: 10, 3: 40, 9: 30}, {1: 500, 2: 300, 3: 150, 4: 50}
    measured = monitor.tfdv_distances(current, baseline)
    assert measured[monitor.L_INFINITY] == pytest.approx(0.3)  # research notes §6, by hand
    assert measured[monitor.JENSEN_SHANNON] == pytest.approx(0.30318, abs=1e-5)
    rng = np.random.default_rng(0)
    for _ in range(3):
        a, b = rng.integers(0, 50, 40), rng.integers(1, 50, 40)
        tfdv = monitor.tfdv_distances({i: int(c) for i, c in enumerate(a) if c}, dict(enumerate(b.tolist())))
        exact = monitor.distances(a.astype(float), b.astype(float))
        assert tfdv == pytest.approx(exact, abs=1e-6)


def test_a_skewed_request_set_crosses_the_popularity_threshold_and_chance_does_not():
    config = configs.MonitorConfig()
    rng = np.random.default_rng(1)
    shares = np.array(list(TRAINING.values()), float) / sum(TRAINING.values())
    like_training = dict(zip(PRODUCTS, rng.multinomial(400, shares).tolist()))
    figures = monitor.popularity_figures({p: c for p, c in like_training.items() if c}, TRAINING, config)
    as_usual = {c["name"]: c for c in monitor.checks(_no_cold_starts(), figures, config)}
    # chance alone: a JSD over the 0.3 threshold for 400 requests, but no more than chance gives
    assert figures["distances"][monitor.JENSEN_SHANNON] > config.max_popularity_jensen_shannon
    assert not as_usual["popularity_jensen_shannon"]["crossed"]
    assert not as_usual["popularity_l_infinity"]["crossed"]

    skewed = {p: 8 for p in PRODUCTS[-50:]}  # 400 requests for the 50 least bought products
    figures = monitor.popularity_figures(skewed, TRAINING, config)
    shifted = {c["name"]: c for c in monitor.checks(_no_cold_starts(), figures, config)}
    assert shifted["popularity_l_infinity"]["crossed"] and shifted["popularity_jensen_shannon"]["crossed"]
    assert figures["distances"][monitor.L_INFINITY] > figures["chance"][monitor.L_INFINITY]
    assert figures["most_asked"]["share"] == pytest.approx(8 / 400)


def _no_cold_starts():
    return {"cold_starts": {w: {"known": 1, "unknown": 0, "not_said": 0} for w in ("users", "products")}}


def test_too_few_requests_are_not_judged():
    config = configs.MonitorConfig(min_requested_products=100)
    figures = monitor.popularity_figures({PRODUCTS[-1]: 50}, TRAINING, config)
    judged = {c["name"]: c for c in monitor.checks(_no_cold_starts(), figures, config)}
    assert judged["popularity_l_infinity"]["value"] is None and not judged["popularity_l_infinity"]["crossed"]
    assert "fewer than the 100 needed" in judged["popularity_l_infinity"]["text"]


def test_logged_requests_are_counted_exactly_and_reported(tmp_path):
    rng = random.Random(0)
    requests = []
    for i in range(120):  # 120 user requests of 1-3 users, 1 unknown row in 6; 80 product requests
        n = 1 + i % 3
        requests.append((monitor.USER_SIGNATURE, [f"u{i}-{j}".encode() for j in range(n)],
                         [(i + j) % 6 != 0 for j in range(n)], 0.002 + 0.001 * (i % 10)))
    for i in range(80):
        requests.append((monitor.ITEM_SIGNATURE, [rng.choice(PRODUCTS)], [i % 4 != 0], 0.010))
    _log(tmp_path / "logs" / "recommender", requests)
    _served_model(str(tmp_path / "models"))
    code = monitor.main(["--request-logs", str(tmp_path / "logs" / "recommender"), "--model-base-path",
                         str(tmp_path / "models"), "--report-dir", str(tmp_path / "out"),
                         "--threshold", "min_rows=50"], stream=io.StringIO())  # 80 product rows judged
    latest = json.loads((tmp_path / "out" / monitor.LATEST).read_text())
    report = json.loads(open(latest["json"]).read())
    figures = report["figures"]
    assert figures["requests"] == 200 == latest["requests"]
    users, items = figures["signatures"][monitor.USER_SIGNATURE], figures["signatures"][monitor.ITEM_SIGNATURE]
    assert (users["requests"], users["rows"], items["requests"], items["rows"]) == (120, 240, 80, 80)
    unknown_users = sum((i + j) % 6 == 0 for i in range(120) for j in range(1 + i % 3))
    assert figures["cold_starts"]["users"] == {"known": 240 - unknown_users, "unknown": unknown_users, "not_said": 0}
    assert figures["cold_starts"]["products"] == {"known": 60, "unknown": 20, "not_said": 0}
    assert users["latency_ms"]["max"] == pytest.approx(11.0) and users["latency_ms"]["measured"] == 120
    assert items["latency_ms"]["p50"] == pytest.approx(10.0) and users["apis"] == {"rest": 120}
    assert users["versions"] == {"7": 120}
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["unknown_products_share"]["value"] == pytest.approx(0.25) and checks["unknown_products_share"][
        "crossed"]  # over the default 0.2: a signal to retrain
    assert code == monitor.EXIT_SIGNAL
    page = open(latest["html"]).read()
    assert "RETRAIN SIGNAL" in page and page.count("data:image/png;base64,") == 2  # traffic, popularity
    assert "<td>rest 120</td><td>7 120</td>" in page  # per API and per version, as counts (not JSON)
    assert "fewer than the 100 needed" in checks["popularity_l_infinity"]["text"]
    records = list(request_log.read_logs(request_log.log_files(str(tmp_path / "logs" / "recommender"))))
    assert monitor.gather(records)["requests"] == 200
    assert monitor.gather(records, since_secs=int(time.time()) + 60)["requests"] == 0  # --hours: none that recent
    # a threshold for one report: 25% unknown products is within 30%
    assert monitor.main(["--request-logs", str(tmp_path / "logs" / "recommender"), "--model-base-path",
                         str(tmp_path / "models"), "--report-dir", str(tmp_path / "out2"), "--threshold",
                         "max_unknown_product_share=0.3", "--threshold", "min_rows=50"],
                        stream=io.StringIO()) == monitor.EXIT_OK
    # ... and with the default 100 rows, 80 are too few to judge
    assert monitor.main(["--request-logs", str(tmp_path / "logs" / "recommender"), "--model-base-path",
                         str(tmp_path / "models"), "--report-dir", str(tmp_path / "out3")],
                        stream=io.StringIO()) == monitor.EXIT_OK
    with pytest.raises(SystemExit) as e:
        monitor.main(["--threshold", "max_latency=3"])
    assert e.value.code == monitor.EXIT_FLAGS


def test_requests_within_the_thresholds_exit_0_and_a_model_without_counts_is_said(tmp_path):
    _log(tmp_path / "logs" / "m", [(monitor.USER_SIGNATURE, [b"a"], [True], 0.001)] * 120)  # >= min_rows
    _served_model(str(tmp_path / "models"), counts={})
    out = io.StringIO()
    code = monitor.main(["--request-logs", str(tmp_path / "logs"), "--model-base-path", str(tmp_path / "models"),
                         "--report-dir", str(tmp_path / "out")], stream=out)
    assert code == monitor.EXIT_OK, out.getvalue()
    assert "within the thresholds" in out.getvalue()
    assert "holds no training counts" in out.getvalue()


def test_flags_that_name_nothing_are_refused(tmp_path):
    """Found by exploratory testing: --hours -1 read nothing and said all was well; a version that
    does not exist read as a model without counts, with a retrain signal."""
    _log(tmp_path / "logs" / "m", [(monitor.USER_SIGNATURE, [b"a"], [True], 0.001)] * 10)
    _served_model(str(tmp_path / "models"))
    common = ["--request-logs", str(tmp_path / "logs"), "--report-dir", str(tmp_path / "out")]
    for hours in ("-1", "0", "nan"):
        with pytest.raises(SystemExit) as e:
            monitor.main(common + ["--hours", hours])
        assert e.value.code == monitor.EXIT_FLAGS
    out = io.StringIO()
    assert monitor.main(common + ["--model-base-path", str(tmp_path / "models"), "--model-version", "12345"],
                        stream=io.StringIO(), errors=out) == monitor.EXIT_FLAGS
    assert "no version 12345 under" in out.getvalue() and "versions there: 7" in out.getvalue()
    # no model at all: the traffic is judged, the popularity says why it is not
    out = io.StringIO()
    assert monitor.main(common + ["--model-base-path", str(tmp_path / "nowhere")], stream=out) == monitor.EXIT_OK
    assert "no served model to compare the requests with" in out.getvalue()
    assert "holds no training counts" not in out.getvalue()


def test_no_logs_is_said_and_exits_1(tmp_path):
    out = io.StringIO()
    assert monitor.main(["--request-logs", str(tmp_path / "none"), "--report-dir", str(tmp_path / "out")],
                        stream=io.StringIO(), errors=out) == monitor.EXIT_ERROR
    assert "no request logs at" in out.getvalue() and "--request_log_sampling_rate" in out.getvalue()


def test_logs_without_a_request_to_judge_are_said_and_exit_1(tmp_path):
    """Found by exploratory testing: an empty or unreadable log file, or --hours with no request in
    the window, printed "0 requests logged ... nothing to act on" and exited 0."""
    _served_model(str(tmp_path / "models"))
    common = ["--model-base-path", str(tmp_path / "models"), "--report-dir", str(tmp_path / "out")]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "recommender-20261206T000000Z-1-00000.tfrecord").write_bytes(b"")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "recommender-20261206T000000Z-1-00000.tfrecord").write_bytes(os.urandom(100))
    for logs, said in (("empty", "no requests in 1 request log file at "),
                       ("garbage", "no requests in 1 request log file at ")):
        out = io.StringIO()
        assert monitor.main(["--request-logs", str(tmp_path / logs)] + common, stream=io.StringIO(),
                            errors=out) == monitor.EXIT_ERROR
        assert out.getvalue().startswith(f"monitor: {said}{tmp_path / logs}"), out.getvalue()
        assert "nothing to act on" not in out.getvalue()
    _log(tmp_path / "old" / "m", [(monitor.USER_SIGNATURE, [b"a"], [True], 0.001)] * 3)
    with pytest.raises(monitor.NoRequests, match=r"no requests in 1 request log file at .* in the last 1 hours"):
        monitor.build_report(str(tmp_path / "old"), str(tmp_path / "models"), None, 1.0,
                             configs.MonitorConfig(), now=time.time() + 2 * 3600)


def test_requests_without_a_latency_or_after_damage_are_said(tmp_path):
    _log(tmp_path / "logs" / "m", [(monitor.ITEM_SIGNATURE, [PRODUCTS[0]], [True], 0.002)] * 6)
    [log_file] = request_log.log_files(str(tmp_path / "logs"))
    os.remove(log_file[:-len(request_log.LOG_SUFFIX)] + request_log.LATENCY_SUFFIX)
    _served_model(str(tmp_path / "models"))
    out = io.StringIO()
    monitor.main(["--request-logs", str(tmp_path / "logs"), "--model-base-path", str(tmp_path / "models"),
                  "--report-dir", str(tmp_path / "out")], stream=out)
    assert (f"  warning: {monitor.ITEM_SIGNATURE}: 6 of 6 requests have no latency logged (no latency file beside "
            "the log, or not written yet)") in out.getvalue()
    [html_file] = [f for f in os.listdir(tmp_path / "out") if f.endswith(".html")]
    assert "6 of 6 requests have no latency logged" in (tmp_path / "out" / html_file).read_text()
    assert "answered by" not in out.getvalue()  # one version


def test_requests_answered_by_several_versions_are_said():
    figures = {"requests": 2, "first": None, "last": None, "files": ["f"], "signatures": {
        monitor.ITEM_SIGNATURE: {"requests": 2, "rows": 2, "latency_ms": {"measured": 2},
                                 "versions": {"12": 1, "9": 1}}}}
    lines = monitor.console_lines({"figures": figures, "checks": [], "model": "/m/12 (version 12)"})
    assert "  note: the requests were answered by 2 versions (9, 12); the popularity is compared with " \
           "/m/12 (version 12)" in lines


def test_the_console_keeps_the_reports_lines_only(tmp_path):
    """Found by exploratory testing: `make monitor` printed TensorFlow's C++ start-up lines."""
    import subprocess
    import sys

    _log(tmp_path / "logs" / "m", [(monitor.USER_SIGNATURE, [b"a"], [True], 0.001)] * 10)
    _served_model(str(tmp_path / "models"))
    done = subprocess.run([sys.executable, "-m", "serving.monitor", "--request-logs", str(tmp_path / "logs"),
                           "--model-base-path", str(tmp_path / "models"), "--report-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=configs.PROJECT_DIR, timeout=300)
    assert done.returncode == monitor.EXIT_OK, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    assert done.stdout.splitlines()[-1].startswith("report  "), done.stdout
    noise = ("I0000 ", "W0000 ", "absl::InitializeLog", "oneDNN", "cuda", "cpu_feature_guard")
    assert not [line for line in done.stdout.splitlines() if any(mark in line for mark in noise)], done.stdout


def test_a_share_of_a_few_rows_raises_no_signal():
    """Found by exploratory testing: one request for an unknown user raised a RETRAIN SIGNAL."""
    figures = {"cold_starts": {"users": {"known": 0, "unknown": 1, "not_said": 0},
                               "products": {"known": 99, "unknown": 101, "not_said": 0}}}
    judged = {c["name"]: c for c in monitor.checks(figures, None, configs.MonitorConfig())}
    assert not judged["unknown_users_share"]["crossed"] and judged["unknown_users_share"]["value"] is None
    assert judged["unknown_users_share"]["text"] == ("unknown users: 100.0% of 1 serving_default row, fewer than "
                                                     "the 100 needed to judge")
    assert judged["unknown_products_share"]["crossed"]  # 200 rows: judged
    # nothing judged at all is said as such, not as "within the thresholds"
    few = {"cold_starts": {w: {"known": 1, "unknown": 0, "not_said": 0} for w in ("users", "products")}}
    none_judged = monitor.checks(few, None, configs.MonitorConfig())
    assert monitor._calm(none_judged).startswith("nothing judged: too few requests for any threshold")


def test_a_newest_version_without_variables_is_passed_over_and_said(tmp_path):
    """Found by exploratory testing: a newest folder with only a saved_model.pb (a damaged copy,
    which no server loads) ended the monitor with a TensorFlow traceback."""
    _log(tmp_path / "logs" / "m", [(monitor.ITEM_SIGNATURE, [PRODUCTS[0]], [True], 0.001)] * 10)
    _served_model(str(tmp_path / "models"))
    os.makedirs(tmp_path / "models" / "9")
    (tmp_path / "models" / "9" / "saved_model.pb").write_text("garbage")
    out = io.StringIO()
    code = monitor.main(["--request-logs", str(tmp_path / "logs"), "--model-base-path", str(tmp_path / "models"),
                         "--report-dir", str(tmp_path / "out")], stream=out)
    assert code == monitor.EXIT_OK, out.getvalue()
    assert "(version 7)" in out.getvalue().splitlines()[0]
    assert "warning: version 9 has no variables (no server can load it): compared with the version below it" \
        in out.getvalue()


def test_threshold_values_that_cannot_work_are_refused_or_said(tmp_path):
    """Found by exploratory testing: each ended in a traceback."""
    _log(tmp_path / "logs" / "m", [(monitor.USER_SIGNATURE, [b"a"], [True], 0.001)] * 10)
    _served_model(str(tmp_path / "models"))
    common = ["--request-logs", str(tmp_path / "logs"), "--model-base-path", str(tmp_path / "models")]
    for bad in (["--threshold", "chance_draws=0", "--report-dir", str(tmp_path / "out")],
                ["--output-dir", str(tmp_path / "logs" / os.listdir(tmp_path / "logs")[0])]):
        with pytest.raises(SystemExit) as e:
            monitor.main(common + bad)
        assert e.value.code == monitor.EXIT_FLAGS
    # no product asked at all, and no minimum: nothing to judge, said
    out = io.StringIO()
    assert monitor.main(common + ["--threshold", "min_requested_products=0", "--report-dir", str(tmp_path / "out")],
                        stream=out) == monitor.EXIT_OK
    assert "popularity L-infinity: no products asked" in out.getvalue()


def test_requests_none_of_which_the_compared_version_answered_are_said():
    """Found by exploratory testing: after a run pushed a model trained on the new users, the
    monitor still said RETRAIN SIGNAL on the 77% unknown users its predecessors had answered,
    with nothing saying that the version compared with had answered none of those requests."""
    figures = {"requests": 2, "first": None, "last": None, "files": ["f"], "signatures": {
        monitor.ITEM_SIGNATURE: {"requests": 2, "rows": 2, "latency_ms": {"measured": 2},
                                 "versions": {"12": 1, "9": 1}, "apis": {"rest": 2}}}}
    report = {"figures": figures, "checks": [], "model": "/m/14 (version 14)", "version": 14,
              "created": "now", "logs": "/logs"}
    note = ("  note: none of these requests was answered by version 14, the one compared with: the unknown "
            "users and products are those of versions 9, 12, which version 14 may know (--hours to judge only "
            "the requests since it serves)")
    assert note in monitor.console_lines(report)
    assert "Note: none of these requests was answered by version 14" in monitor.render_html(report, {})
    # the version that answered is the one compared with: no such note
    assert not [line for line in monitor.console_lines({**report, "model": "/m/12 (version 12)", "version": 12})
                if "none of these requests" in line]


def test_the_latency_axis_is_labelled_in_plain_numbers():
    """Found by exploratory testing: latencies of 1-8 ms were labelled 2x10^0 3x10^0 4x10^0 6x10^0,
    on top of each other."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1.1, 2.3, 7.8], [0.3, 0.6, 1.0])
    ax.set(xscale="log")
    monitor.plain_log_ticks(ax.xaxis)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.xaxis.get_ticklabels(which="both") if t.get_text()]
    plt.close(fig)
    assert labels and all("$" not in t and "10^" not in t for t in labels), labels  # no mathtext
    assert set(labels) <= {"0.1", "0.2", "0.5", "1", "2", "5", "10", "20", "50", "100"}, labels


def test_output_dir_is_the_pipelines_as_for_make_run_and_make_history(tmp_path):
    """Found by exploratory testing: --output-dir was the report's folder here, and the pipeline's
    output directory for make run and make history: `make monitor ARGS="--output-dir DIR"` read
    outputs/'s logs and model and put its report where DIR's run report never looks."""
    run = tmp_path / "run"
    _log(run / "request_logs" / "recommender", [(monitor.USER_SIGNATURE, [b"a"], [True], 0.001)] * 3)
    _served_model(str(run / "serving_model" / "recommender"))
    out = io.StringIO()
    assert monitor.main(["--output-dir", str(run)], stream=out) == monitor.EXIT_OK
    latest = json.loads((run / "monitoring" / monitor.LATEST).read_text())  # where the run report looks
    assert latest["requests"] == 3 and f"report  {run / 'monitoring'}" in out.getvalue()
    # each part can still be named on its own
    assert monitor.main(["--output-dir", str(run), "--report-dir", str(tmp_path / "elsewhere")],
                        stream=io.StringIO()) == monitor.EXIT_OK
    assert (tmp_path / "elsewhere" / monitor.LATEST).exists()
