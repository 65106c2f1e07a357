"""The model card: gathered from the run's artifacts, shaped as model-card-toolkit's schema,
readable by a person, and read back by the history."""

import datetime
import json
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifacts

from components import evaluator, model_card
from models.examples import purchase_examples
from pipeline import configs

MCT_TOP_LEVEL = {"schema_version", "model_details", "model_parameters", "quantitative_analysis", "considerations"}
PUSHED_AT = datetime.datetime(2026, 12, 5, 10, 12, 30, tzinfo=datetime.timezone.utc)
BOUNDS = {"recall_at_10": 0.03, "ndcg_at_10": 0.016, "sampled_accuracy": 0.15}


def _examples(tmp_path):
    """An Examples artifact of two splits written as ExampleGen writes them (gzipped TFRecords)."""
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = json.dumps(["train", "eval"])
    examples.set_int_custom_property("span", 3)
    examples.set_string_custom_property("input_fingerprint", "split:train,num_files:1,total_bytes:10")
    purchases = {"train": ([b"u1", b"u1", b"u2", b"u3"], [10, 11, 10, 12]), "eval": ([b"u1", b"u4"], [12, 10])}
    for split, (users, products) in purchases.items():
        os.makedirs(os.path.join(examples.uri, f"Split-{split}"))
        path = os.path.join(examples.uri, f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for record in purchase_examples(users, products):
                writer.write(record)
    return examples


def _gate(blessed=True, with_baseline=True, popularity=False, margin=2.3833, intervals=None):
    config = evaluator.eval_config(BOUNDS, 0.01)
    values = {evaluator.CANDIDATE: {"recall_at_10": 0.0406, "ndcg_at_10": 0.0245, "sampled_accuracy": 0.1758,
                                    "mrr": 0.023}}
    if with_baseline:
        values[evaluator.BASELINE] = {"recall_at_10": 0.0401, "ndcg_at_10": 0.0240, "sampled_accuracy": 0.17}
    rows = evaluator.gate_rows(config, values, {}, intervals)
    if popularity:  # the popularity rule's figures in the gate's rows (issue 17 item 2)
        for row, value in zip(rows, (0.012, None, 0.006, None, 0.09)):
            row["popularity"] = value
        rows.insert(1, {"metric": "recall_at_10_over_popularity", "kind": "margin", "of": "recall_at_10",
                        "candidate": margin, "baseline": 2.3417, "popularity": None,
                        "threshold": ">= +10.0% over popularity", "result": "ok"})
    gate = {"blessed": blessed, "verdict": "BLESSED: the model passes the gate, on to the Pusher",
            "has_baseline": with_baseline, "values": values, "curves": {}, "rows": rows, "details": []}
    return model_card.evaluation_section(gate, config, "/evaluation/uri")


def _card(tmp_path, **changes):
    model_dir = tmp_path / "model"
    os.makedirs(model_dir / "assets.extra", exist_ok=True)
    sections = dict(
        git="abc123", data=model_card.data_section(_examples(tmp_path)),
        training=model_card.training_section(str(model_dir), None), evaluation=_gate())
    sections.update(changes)
    return model_card.assemble(name="recommender", version=1796012949, pushed_at=PUSHED_AT,
                               destination="/out/serving_model/recommender/1796012949", served_before=1796001422,
                               **sections)


def test_the_data_section_counts_and_checksums_what_the_model_read(tmp_path):
    data = model_card.data_section(_examples(tmp_path))
    train, evaluation = data["data"]
    assert (train["name"], train["rows"], train["users"], train["products"]) == ("train", 4, 3, 3)
    assert (evaluation["name"], evaluation["rows"], evaluation["users"], evaluation["products"]) == ("eval", 2, 2, 2)
    [f] = train["files"]
    assert f["path"] == "data_tfrecord-00000-of-00001.gz"
    assert f["sha256"] == model_card.sha256_of(os.path.join(data["examples"]["uri"], "Split-train", f["path"]))
    assert data["examples"]["properties"]["span"] == 3


def test_the_card_has_model_card_toolkits_sections_only(tmp_path):
    card = _card(tmp_path)
    assert set(card) == MCT_TOP_LEVEL  # the schema's top level allows nothing else
    assert card["schema_version"] == "0.0.2"
    version = card["model_details"]["version"]
    assert version["name"] == "1796012949" and version["date"] == "2026-12-05"
    assert version["pushed_at"] == "2026-12-05T10:12:30Z"
    assert version["diff"] == "pushed by the pipeline: blessed by the gate, compared with the served version 1796001422"
    assert card["model_details"]["code"]["git_commit"] == "abc123"
    metrics = card["quantitative_analysis"]["performance_metrics"]
    assert {"type": "recall_at_10", "value": "0.0406", "slice": "candidate"} in metrics
    assert {"type": "recall_at_10", "value": "0.0401", "slice": "served"} in metrics
    assert all(isinstance(m["value"], str) for m in metrics)  # the schema's metric values are strings
    gate = card["quantitative_analysis"]["gate"]
    assert gate["blessed"] and gate["bounds"]["recall_at_10"] == {"lower_bound": 0.03, "max_relative_drop": 0.01}
    assert any("Cold start" in c["description"] for c in card["considerations"]["limitations"])
    json.dumps(card)  # plain JSON


def test_the_markdown_shows_data_checksums_metrics_and_limits(tmp_path):
    card = _card(tmp_path, evaluation=_gate(popularity=True))
    text = model_card.markdown(card)
    assert text.startswith("# Model card: recommender version 1796012949\n")
    sha = card["model_parameters"]["data"][0]["files"][0]["sha256"]
    assert f"| train | 4 | 3 | 3 | `data_tfrecord-00000-of-00001.gz` {sha} |" in text
    assert "| metric | candidate | served (v1796001422) | popularity | gate | result |" in text
    assert "| recall_at_10 | 0.0406 | 0.0401 | 0.0120 | >= 0.03, drop <= 1.0% vs served | ok |" in text
    assert "| recall_at_10_over_popularity | +238.3% | +234.2% | - | >= +10.0% over popularity | ok |" in text
    assert "| mrr | 0.0230 | - | - | not gated | - |" in text
    assert "## Known limits" in text and "most popular" in text
    assert "change vs served" not in text  # no interval (an evaluation without them)
    # the change against the served model and its 95% interval, as the gate judged it
    card = _card(tmp_path / "with-intervals",
                 evaluation=_gate(popularity=True, intervals={"recall_at_10": (0.0005, 0.0004, 19)}))
    assert ("| recall_at_10 change vs served | +1.2% | - | - | 95% interval -0.8% to +3.3% | ok |"
            in model_card.markdown(card))
    assert "git abc123" in text


def test_the_card_rounds_a_margin_once_as_the_gate_does(tmp_path):
    # rounded to 6 digits first (1.0255), then to a percent, it read +102.6%
    card = _card(tmp_path, evaluation=_gate(popularity=True, margin=1.025496))
    assert {"type": "recall_at_10_over_popularity", "value": "1.025496", "slice": "candidate"} \
        in card["quantitative_analysis"]["performance_metrics"]
    assert f"| recall_at_10_over_popularity | {evaluator._percent(1.025496)} |" in model_card.markdown(card)
    assert evaluator._percent(1.025496) == "+102.5%"


def test_training_json_and_the_model_run_fill_the_training_facts(tmp_path):
    model_dir, run_dir = tmp_path / "model", tmp_path / "run"
    os.makedirs(model_dir / "assets.extra")
    os.makedirs(run_dir)
    (run_dir / "model_config.json").write_text(json.dumps({"embedding_dim": 128, "sampling": "in_batch",
                                                           "use_history": True, "epochs": 3, "max_history": 32}))
    (run_dir / "training_history.json").write_text(json.dumps([{"loss": 2.5}, {"loss": 1.25}]))
    training = {  # the Trainer's keys (models/trainer.py, DECISIONS D4)
        "data": {"input_fingerprint": "split:train,num_files:3", "span": 4, "window_spans": "[2, 3, 4]",
                 "rows": 4, "users": 3, "products": 3},
        "start": {"kind": "warm", "from_version": 1796001422, "reason": "1796001422 is the baseline",
                  "carried_products": 3, "new_products": 1, "dropped_products": 0, "new_purchases": 2,
                  "rehearsal": 0.5, "rehearsed_purchases": 1},
        "model": {"preset": "default", "config": {"embedding_dim": 64, "max_history": 16}},
        "code_fingerprint": "f00d", "training": {"epochs": 1, "seconds": 2.5}}
    (model_dir / "assets.extra" / "training.json").write_text(json.dumps(training))
    card = _card(tmp_path, training=model_card.training_section(str(model_dir), str(run_dir)))
    parameters = card["model_parameters"]
    assert parameters["training"] == training and parameters["model_config"]["embedding_dim"] == 128
    assert parameters["model_architecture"].endswith("3 epochs when trained cold; final training loss 1.25")
    assert "popularity prior" not in parameters["model_architecture"]  # none at weight 0
    assert card["model_details"]["code"]["code_fingerprint"] == "f00d"
    assert any("at most 32" in c["description"] for c in card["considerations"]["limitations"])
    assert model_card.spans(card) == "2-4"
    text = model_card.markdown(card)
    # found by exploratory testing: the card said "3 epochs" and then "1 epoch", and not what was carried
    assert ("- **Start** warm start from version 1796001422: 1796001422 is the baseline; 3 products carried "
            "over, 1 new, 0 dropped; trained on 2 purchases new to it and 1 it had seen") in text
    assert "Trained on spans 2-4: 4 purchases, 3 users, 3 products." in text
    # found with generated spans: a warm start with nothing new takes no step (the console says so)
    nothing = json.loads(json.dumps(card))
    nothing["model_parameters"]["training"]["start"].update(new_purchases=0, rehearsed_purchases=0)
    assert "0 dropped; no purchase new to it: no training step\n" in model_card.markdown(nothing)
    nothing["model_parameters"]["training"]["start"]["chain"] = 2
    assert "no training step; warm start 2 in a row\n" in model_card.markdown(nothing)
    assert "- **Training** 1 epoch in 2.5 s; code_fingerprint: f00d\n" not in text  # the Code line has it
    assert "- **Training** 1 epoch in 2.5 s\n" in text
    # without the model_run artifact, the configuration comes from training.json
    alone = _card(tmp_path / "alone", training=model_card.training_section(str(model_dir), None))
    assert alone["model_parameters"]["model_config"] == {"embedding_dim": 64, "max_history": 16}


def test_the_flat_layouts_card_names_no_span_and_reads_as_words(tmp_path):
    model_dir = tmp_path / "model"
    os.makedirs(model_dir / "assets.extra")
    flat = {"input_fingerprint": "split:train,num_files:1,total_bytes:9\nsplit:eval,num_files:1,total_bytes:4\n"
                                 "split:span_train,num_files:0,total_bytes:0\nsplit:span_eval,num_files:0",
            "span": 0, "window_spans": [0], "eval_source": "standing", "rows": 165042}
    facts = {"data": flat, "trained_at": "2026-12-06T05:07:29+00:00", "training_key": "960da880",
             "start": {"kind": "warm", "from_version": 7, "reason": "7 is the baseline"},
             "baseline": {"found": False, "reason": "no model is served yet", "version": None},
             "training": {"epochs": 0, "seconds": 0.04}}
    (model_dir / "assets.extra" / "training.json").write_text(json.dumps(facts))
    card = _card(tmp_path, training=model_card.training_section(str(model_dir), None))
    assert model_card.spans(card) is None  # TFX's span 0, not a span a person named
    text = model_card.markdown(card)
    assert "Trained on the flat data (one train file); evaluated on the standing eval file: 165,042 purchases." in text
    assert ("- **Training** no step (nothing new to learn) in 0.0 s; at 2026-12-06 05:07 UTC; no baseline "
            "(no model is served yet); training key 960da880\n") in text


def test_drift_measurements_come_from_the_anomalies(tmp_path):
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "anomalies")
    proto = anomalies_pb2.Anomalies()
    info = proto.drift_skew_info.add()
    info.path.step.append("productId")
    info.drift_measurements.add(type=anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY, value=0.3, threshold=0.1)
    info.drift_measurements.add(type=anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE,
                                value=0.05, threshold=0.1)
    os.makedirs(os.path.join(anomalies.uri, "Split-train"))
    with open(os.path.join(anomalies.uri, "Split-train", "SchemaDiff.pb"), "wb") as f:
        f.write(proto.SerializeToString())
    drift = model_card.drift_section(anomalies)
    assert drift == [
        {"split": "Split-train", "feature": "productId", "measure": "L_INFTY", "value": 0.3, "threshold": 0.1,
         "crossed": True},
        {"split": "Split-train", "feature": "productId", "measure": "JENSEN_SHANNON_DIVERGENCE",
         "value": 0.05, "threshold": 0.1, "crossed": False}]
    text = model_card.markdown(_card(tmp_path, drift=drift))
    assert "| Split-train | productId | L_INFTY | 0.3 | 0.1 | crossed |" in text
    # a drift report keeps its anomalies at its top
    with open(os.path.join(anomalies.uri, "SchemaDiff.pb"), "wb") as f:
        f.write(proto.SerializeToString())
    assert [d["split"] for d in model_card.drift_section(anomalies)] == ["SchemaDiff"] * 2 + ["Split-train"] * 2


def test_a_rollback_keeps_the_models_facts_and_says_why(tmp_path):
    card = _card(tmp_path)
    again = model_card.rollback(card, name="recommender", version=1796100000, of=1796012949, reason="sales fell",
                                pushed_at=PUSHED_AT, destination="/out/1796100000", served_before=1796050000)
    version = again["model_details"]["version"]
    assert (version["name"], version["rollback_of"], version["reason"]) == ("1796100000", 1796012949, "sales fell")
    assert version["diff"] == "rollback to version 1796012949: sales fell"
    assert again["quantitative_analysis"] == card["quantitative_analysis"]
    assert card["model_details"]["version"]["name"] == "1796012949"  # the original is left as it was
    assert set(model_card.rollback(None, name="recommender", version=2, of=1, reason="r", pushed_at=PUSHED_AT,
                                   destination="/x", served_before=3)) == MCT_TOP_LEVEL


def test_the_card_files_are_read_back(tmp_path):
    card = _card(tmp_path)
    version_dir = tmp_path / "1796012949"
    for relative, data in model_card.files(card).items():
        os.makedirs(os.path.dirname(version_dir / relative), exist_ok=True)
        (version_dir / relative).write_bytes(data)
    assert model_card.read(str(version_dir)) == card
    assert model_card.metric(card, "ndcg_at_10") == 0.0245 and model_card.metric(card, "ndcg_at_10", "served") == 0.024
    assert model_card.gated_metrics(card) == ["recall_at_10", "ndcg_at_10", "sampled_accuracy"]
    assert model_card.rows(card) == {"train": 4, "eval": 2}
    assert model_card.spans(card) == "3"  # ExampleGen's span property
    assert model_card.read(str(tmp_path / "nothing")) is None


def test_the_git_commit_from_the_makefile_git_or_the_git_files(tmp_path, monkeypatch):
    monkeypatch.setenv(model_card.GIT_COMMIT_VARIABLE, "abc (uncommitted changes)")
    assert model_card.git_commit(str(tmp_path)) == "abc (uncommitted changes)"
    monkeypatch.delenv(model_card.GIT_COMMIT_VARIABLE)
    monkeypatch.setenv("PATH", "")  # no git: the environment the pipeline runs in
    assert model_card.git_commit(str(tmp_path)) == ""  # not a checkout
    main, work = tmp_path / "main", tmp_path / "work"
    os.makedirs(main / ".git" / "refs" / "heads")
    (main / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (main / ".git" / "refs" / "heads" / "main").write_text("1111\n")
    assert model_card.git_commit(str(main)) == "1111"
    (main / ".git" / "packed-refs").write_text("# pack-refs\n2222 refs/heads/feature\n")
    os.makedirs(main / ".git" / "worktrees" / "work")  # a worktree on a packed branch
    (main / ".git" / "worktrees" / "work" / "HEAD").write_text("ref: refs/heads/feature\n")
    (main / ".git" / "worktrees" / "work" / "commondir").write_text("../..\n")
    os.makedirs(work)
    (work / ".git").write_text(f"gitdir: {main / '.git' / 'worktrees' / 'work'}\n")
    assert model_card.git_commit(str(work)) == "2222"


def test_dated_spans_read_as_their_folders_dates(tmp_path):
    card = _card(tmp_path)
    files = {str(n): [f"/data/{folder}/{configs.TRAIN_FILE}"]
             for n, folder in ((20454, "2026-01-01"), (20455, "20260102"), (20456, "2026-01-03"))}
    card["model_parameters"]["examples"] = {"properties": {
        "span": 20456, "window_spans": "20454,20455,20456", "span_train_files": json.dumps(files)}}
    assert model_card.spans(card) == "2026-01-01 to 2026-01-03"
    assert model_card.spans_text(card) == "spans 2026-01-01 to 2026-01-03"
    # found by exploratory testing: a window without its late middle day read as the whole range
    card["model_parameters"]["examples"]["properties"]["window_spans"] = "20454,20456"
    assert model_card.spans_text(card) == "spans 2026-01-01, 2026-01-03"
    card["model_parameters"]["examples"]["properties"]["window_spans"] = "20456"
    assert model_card.spans_text(card) == "span 2026-01-03"
    card["model_parameters"]["examples"]["properties"].update(  # span-N folders: their numbers
        window_spans="2,3", span_train_files=json.dumps({"2": ["/d/span-2/t.parquet"], "3": ["/d/span-3/t.parquet"]}))
    assert model_card.spans_text(card) == "spans 2-3"
    # found by exploratory testing: a window with a gap read "1-3", as the window that filled it
    card["model_parameters"]["examples"]["properties"].update(
        window_spans="1,3", span_train_files=json.dumps({"1": ["/d/span-1/t.parquet"], "3": ["/d/span-3/t.parquet"]}))
    assert model_card.spans_text(card) == "spans 1, 3"


def test_the_input_files_of_a_span_trained_model_include_its_window_spans(tmp_path):
    """Found by exploratory testing: the card's "Input files at push time" of a model trained on
    span folders listed only the top level (the catalog, the standing eval file)."""
    from components import parquet_example_gen

    for folder in ("span-1", "span-2", "span-3"):
        os.makedirs(tmp_path / folder)
        (tmp_path / folder / "dsf_asos_train_x.parquet").write_text(folder)
    (tmp_path / "span-3" / "dsf_asos_valid_x.parquet").write_text("eval")
    (tmp_path / "catalog.csv").write_text("c")
    examples = standard_artifacts.Examples()
    examples.set_string_custom_property(parquet_example_gen.WINDOW_SPANS_PROPERTY, "2,3")
    examples.set_string_custom_property(parquet_example_gen.SPAN_TRAIN_FILES_PROPERTY, json.dumps(
        {str(n): [str(tmp_path / f"span-{n}" / "dsf_asos_train_x.parquet")] for n in (1, 2, 3)}))  # 1: the previous
    patterns = [str(tmp_path / "dsf_asos_train_*.parquet"), str(tmp_path / "dsf_asos_valid_*.parquet"),
                str(tmp_path / "catalog.csv")]
    listed = {os.path.relpath(f["path"], tmp_path)
              for f in model_card.source_files(model_card.window_patterns(patterns, examples))}
    assert listed == {"catalog.csv", "span-2/dsf_asos_train_x.parquet", "span-3/dsf_asos_train_x.parquet",
                      "span-3/dsf_asos_valid_x.parquet"}


def test_the_drift_gates_comparison_goes_into_the_card(tmp_path):
    """Found by exploratory testing: the card's drift came from the validator's anomalies only,
    where this pipeline's drift figures never are; the DriftGate's were in no card."""
    figures = {"compared": True, "newest": {"name": "span-3", "rows": 10}, "previous": {"name": "span-2", "rows": 10},
               "measures": [{"name": "product L-infinity", "value": 0.0037, "limit": "<= 0.01", "over": False},
                            {"name": "rows new / previous", "value": 3.0, "limit": "0.5 to 2", "over": True},
                            {"name": "per-user JS", "value": None, "limit": "<= 0.1", "over": False}],
               "drifted": True, "accepted": "--accept-drift on 2026-12-07T02:00:00+00:00"}
    gate = model_card.drift_gate_section(figures)
    assert (gate["newest"], gate["previous"], gate["accepted"]) == (
        "span-3", "span-2", "--accept-drift on 2026-12-07T02:00:00+00:00")
    assert gate["verdict"].startswith("OVER the thresholds, accepted")
    card = _card(tmp_path, drift_gate=gate)
    assert card["quantitative_analysis"]["drift_gate"]["measures"][1] == {
        "name": "rows new / previous", "value": 3.0, "limit": "0.5 to 2", "over": True}
    text = model_card.markdown(card)
    assert "## Drift: span-3 against span-2" in text and f"**Drift gate**: {gate['verdict']}" in text
    assert "| rows new / previous | 3 | 0.5 to 2 | OVER |" in text and "| per-user JS | - | <= 0.1 | ok |" in text
    # the flat layout, a first span: nothing compared, no section
    assert model_card.drift_gate_section({"compared": False, "reason": "one span"}) is None
    assert model_card.drift_gate_section(None) is None


def test_the_architecture_names_a_popularity_prior():
    """Found in review: a model trained with --model-param popularity_weight=2 (docs/model.md,
    "Skewed popularity") ranked with a prior its card did not name."""
    architecture = model_card._architecture({"embedding_dim": 128, "sampling": "in_batch", "use_history": True,
                                             "epochs": 3, "copurchase_weight": 6.0, "popularity_weight": 2.0}, None)
    assert architecture == ("Negative-sampling recommender (models/model.py): embedding dim 128, in_batch "
                            "negatives, purchase-history user vector, item graph weight 6.0, popularity prior "
                            "weight 2.0, 3 epochs when trained cold")
