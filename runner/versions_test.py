"""History and rollback on a local directory and on an (in-memory) object store."""

import datetime
import os
import shutil

import pytest

import versions as entry_point
from components import evaluator, model_card, model_versions, testing
from runner import console, versions

NOW = datetime.datetime(2026, 12, 5, 12, 0, tzinfo=datetime.timezone.utc)
PUSHED_AT = datetime.datetime(2026, 12, 5, 10, 12, 30, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return testing.save_tiny_model(str(tmp_path_factory.mktemp("model") / "saved"))


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    """Another model (other weights): the versions of a history are not all the same model."""
    return testing.save_tiny_model(str(tmp_path_factory.mktemp("model") / "other"), weight=5.0)


def _card(number, path, with_baseline=True):
    """A card as the Pusher writes one: two splits, the gate's table."""
    config = evaluator.eval_config({"recall_at_10": 0.03, "ndcg_at_10": 0.016, "sampled_accuracy": 0.15}, 0.01)
    values = {evaluator.CANDIDATE: {"recall_at_10": 0.0406, "ndcg_at_10": 0.0245, "sampled_accuracy": 0.1758}}
    if with_baseline:
        values[evaluator.BASELINE] = {"recall_at_10": 0.0401, "ndcg_at_10": 0.0240, "sampled_accuracy": 0.17}
    gate = {"blessed": True, "verdict": "BLESSED", "has_baseline": with_baseline, "values": values, "curves": {},
            "rows": evaluator.gate_rows(config, values, {}), "details": []}
    data = {"data": [{"name": "train", "rows": 4}, {"name": "eval", "rows": 2}],
            "examples": {"uri": "/examples", "properties": {"span": 3}}}
    return model_card.assemble(name="recommender", version=number, pushed_at=PUSHED_AT, destination=path,
                               served_before=1796001422, data=data,
                               evaluation=model_card.evaluation_section(gate, config))


def _push(saved_model, base, number, with_baseline=True):
    """A version as the Pusher publishes it, with its card."""
    return model_versions.publish(saved_model, base, lambda n, path: model_card.files(_card(n, path, with_baseline)),
                                  now=number)


@pytest.fixture
def base(saved_model, other_model, tmp_path):
    base = str(tmp_path / "models")
    _push(saved_model, base, 1796001422)
    _push(other_model, base, 1796012949, with_baseline=False)
    shutil.copytree(saved_model, os.path.join(base, "1796020000"), ignore=shutil.ignore_patterns("saved_model.pb"))
    return base


def test_a_damaged_newest_version_is_said_to_stop_servers(base):
    """Found by exploratory testing: the served version's variables deleted by hand, history said
    "never served" of it and starred the version below, while the server tried it and served nothing."""
    shutil.rmtree(os.path.join(base, "1796012949", "variables"))
    lines = versions.history_text(base, "recommender").splitlines()
    damaged = next(line for line in lines if line.startswith("  1796012949"))
    assert damaged.endswith("INCOMPLETE (no variables/variables.index): servers try to load it (the newest with "
                            "a saved_model.pb) and fail: a server started now serves nothing, a running one keeps "
                            "the version it serves; restore it or delete it by hand")
    assert any(line.startswith("* 1796001422") for line in lines)  # what the pipeline takes as served
    assert "INCOMPLETE (no saved_model.pb): never served" in lines[2]  # servers skip it


def test_history_lists_versions_newest_first_and_marks_the_served_one(base):
    text = versions.history_text(base, "recommender")
    lines = text.splitlines()
    assert lines[0] == f"versions of recommender under {base}, newest first (* = served):"
    assert lines[1].split() == ["version", "pushed", "(UTC)", "data", "recall@10", "ndcg@10", "sampled", "acc",
                                "verdict"]
    incomplete, served, older = lines[2:5]
    assert incomplete.startswith("  1796020000") and "INCOMPLETE (no saved_model.pb): never served" in incomplete
    assert served.startswith("* 1796012949  2026-12-05 10:12")
    assert "span 3, train 4, eval 2" in served and "0.0406" in served and "0.1758" in served
    # 1796001422 was served when it was pushed, but it had no baseline (e.g. a rerun of the
    # training that made a first model): not "nothing served before"
    assert served.endswith("blessed on absolute bounds (no baseline; 1796001422 was served)")
    assert older.startswith("  1796001422") and older.endswith("blessed, compared with 1796001422")


def test_history_says_which_eval_file_each_version_was_judged_on(saved_model, tmp_path):
    """Found by exploratory testing: versions evaluated on different spans' eval files read as a
    regression from one to the next (recall@10 0.2855, then 0.2078 on another span's purchases)."""
    base = str(tmp_path / "models")
    for number, source in ((1796001422, "span-2"), (1796012949, "standing"), (1796020000, None)):
        def files(n, path, source=source):
            card = _card(n, path)
            if source:
                card["model_parameters"]["examples"]["properties"]["eval_source"] = source
            return model_card.files(card)
        model_versions.publish(saved_model, base, files, now=number)
    lines = versions.history_text(base, "recommender").splitlines()[2:]
    assert "span 3, train 4, eval 2    " in lines[0]  # a card that does not say: nothing added
    assert "span 3, train 4, eval 2 (standing)" in lines[1]
    assert "span 3, train 4, eval 2 (span-2)" in lines[2]


def test_a_rollback_is_a_new_version_served_and_recorded(base, tmp_path):
    version = versions.rollback(base, 1796001422, "sales fell with 1796012949", "recommender", now=NOW)
    assert version.number == int(NOW.timestamp()) and model_versions.served(base).number == version.number
    card = model_card.read(version.path)
    details = card["model_details"]["version"]
    assert (details["rollback_of"], details["reason"], details["served_before"]) == (
        1796001422, "sales fell with 1796012949", 1796012949)
    assert card["quantitative_analysis"] == model_card.read(os.path.join(base, "1796001422"))["quantitative_analysis"]
    assert "rollback to version 1796001422: sales fell" in open(
        os.path.join(version.path, "assets.extra", "model_card.md")).read()
    first = versions.history_text(base).splitlines()[2]
    assert first.startswith(f"* {version.number}  2026-12-05 12:00")
    assert first.endswith("rollback to 1796001422: sales fell with 1796012949")
    # a cached run that pushed 1796001422 back then: the console names the copy that serves it now
    assert console.served_copy(base, "1796001422") == (str(version.number), version.path)
    assert console.served_copy(base, "1796012949") is None  # not what the copy is of
    assert console.served_copy(base, str(version.number)) is None  # the served version itself
    # rolling back to it again: it is served already, as its copy (found by exploratory testing:
    # that made a second copy)
    with pytest.raises(versions.AlreadyServed, match=f"already served, as version {version.number}"):
        versions.rollback(base, 1796001422, "again", now=NOW)
    # a second rollback in the same second still gets the newest number
    again = versions.rollback(base, 1796012949, "undo", now=NOW)
    assert again.number == version.number + 1


def test_a_rollback_to_the_same_model_as_the_served_one_publishes_nothing(base, saved_model, capsys):
    """Found by exploratory testing: a run that trained 1796001422's model again (the same data and
    code) was pushed as a new version; a rollback to 1796001422 then published a third copy."""
    again = _push(saved_model, base, 1796030000)  # not a rollback: the Pusher's own push
    with pytest.raises(versions.AlreadyServed, match="version 1796001422 is the same model as the served "
                                                     "version 1796030000: nothing to roll back"):
        versions.rollback(base, 1796001422, "bad week", now=NOW)
    assert model_versions.served(base).number == again.number
    assert entry_point.main(["rollback", "1796001422", "--reason", "x", "--serving-dir", base]) == 0
    assert "the same model as the served version" in capsys.readouterr().out
    assert versions.rollback(base, 1796012949, "bad week", now=NOW).number == int(NOW.timestamp())
    # a rollback to a copy of it, then to it again: served already, as a copy of a copy (found by
    # exploratory testing: a third copy)
    versions.rollback(base, 1796030000, "the week after", now=NOW)
    with pytest.raises(versions.AlreadyServed, match="the same model as the served version"):
        versions.rollback(base, 1796001422, "chain", now=NOW)


@pytest.mark.parametrize("number, reason, error", [
    (123, "x", "no version 123 under {base} (complete versions: 1796012949, 1796001422)"),
    (1796020000, "x", "version 1796020000 under {base} is not complete (no saved_model.pb): it cannot be served"),
    (1796001422, "  ", "a rollback needs a reason"),
])
def test_a_rollback_refuses_what_cannot_be_served(base, number, reason, error):
    with pytest.raises(versions.VersionError) as e:
        versions.rollback(base, number, reason)
    assert str(e.value).startswith(error.format(base=base))
    with pytest.raises(versions.AlreadyServed):
        versions.rollback(base, 1796012949, "x")
    assert [v.number for v in model_versions.versions(base)] == [1796020000, 1796012949, 1796001422]


def test_the_command_line_exit_codes(base, capsys):
    assert entry_point.main(["rollback", "123", "--reason", "x", "--serving-dir", base]) == 2
    assert capsys.readouterr().err == (f"error: no version 123 under {base} (complete versions: 1796012949, "
                                       "1796001422)\n")
    assert entry_point.main(["rollback", "1796012949", "--reason", "x", "--serving-dir", base]) == 0
    assert "already the one served" in capsys.readouterr().out
    assert entry_point.main(["rollback", "1796001422", "--reason", "bad week", "--serving-dir", base]) == 0
    out = capsys.readouterr().out
    assert out.startswith("version 1796001422 is served again as version ")
    assert entry_point.main(["history", "--serving-dir", base]) == 0
    assert "rollback to 1796001422: bad week" in capsys.readouterr().out.splitlines()[2]


def test_the_command_line_with_an_output_directory(base, tmp_path, capsys):
    """Found by exploratory testing: a rollback during a run was told to pass --wait, which it
    has not; a mistyped --output-dir read as an empty history."""
    from runner import run_lock

    out = tmp_path / "out"
    shutil.copytree(base, out / "serving_model" / "recommender")
    with run_lock.hold(str(out)):  # a pipeline run on it
        assert entry_point.main(["rollback", "1796001422", "--reason", "x", "--output-dir", str(out)]) == 75
        error = capsys.readouterr().err
        assert "roll back once it has finished" in error and "--wait" not in error
        # a reason left out is said first: waiting for the run would not mend it
        assert entry_point.main(["rollback", "1796001422", "--reason", "", "--output-dir", str(out)]) == 2
        assert "a rollback needs a reason" in capsys.readouterr().err
    assert entry_point.main(["history", "--output-dir", str(tmp_path / "outptus")]) == 2
    assert capsys.readouterr().err.startswith(f"error: no output directory {tmp_path / 'outptus'} ")
    (tmp_path / "a-file").write_text("")
    assert entry_point.main(["history", "--output-dir", str(tmp_path / "a-file")]) == 2
    assert capsys.readouterr().err.startswith(f"error: not a directory: {tmp_path / 'a-file'} ")
    assert entry_point.main(["history", "--output-dir", str(out)]) == 0


def test_a_replays_directory_points_to_its_runs_directories(base, tmp_path, capsys):
    """Found by exploratory testing: `make history` on `make replay`'s output directory said "no
    versions ... yet (run 'make run' to push one)": its runs push under warm/ and cold/."""
    out = tmp_path / "replay"
    shutil.copytree(base, out / "warm" / "serving_model" / "recommender")
    (out / "cold").mkdir()
    (out / entry_point.REPLAY_MARKER).write_text('{"spans": []}')
    for command in (["history"], ["rollback", "1796001422", "--reason", "x"]):
        assert entry_point.main([*command, "--output-dir", str(out)]) == 2
        assert capsys.readouterr().err == (
            f"error: {out} is a replay's output directory: its runs push under warm/ (--output-dir {out}/warm) "
            f"and cold/ (--output-dir {out}/cold)\n")
    assert entry_point.main(["history", "--output-dir", str(out / "warm")]) == 0
    assert "1796012949" in capsys.readouterr().out


def test_history_and_rollback_on_an_object_store(saved_model, other_model, tmp_path):
    with testing.memory_object_store() as store:
        base = "memfs://bucket/serving_model/recommender"
        _push(saved_model, base, 1796001422)
        _push(other_model, base, 1796012949)
        store.writes.clear()
        version = versions.rollback(base, 1796001422, "sales fell", now=NOW)
        assert store.writes[-1] == f"{version.path}/saved_model.pb"  # the copy, saved_model.pb last
        assert model_card.read(version.path)["model_details"]["version"]["rollback_of"] == 1796001422
        assert versions.history_text(base).splitlines()[2].startswith(f"* {version.number}")


def _serve_a_model_trained_on_accepted_drift(saved_model, other_model, base: str) -> None:
    """Version 1796001422, then 1796012949 trained on span-3, its drift accepted, served."""
    _push(saved_model, base, 1796001422)
    gate = {"newest": "span-3", "previous": "span-2", "verdict": "OVER the thresholds",
            "accepted": "--accept-drift", "measures": []}
    model_versions.publish(other_model, base, lambda n, path: model_card.files(
        {**_card(n, path), "quantitative_analysis": {**_card(n, path)["quantitative_analysis"], "drift_gate": gate}}),
        now=1796012949)


def test_a_rollback_from_a_model_trained_on_accepted_drift_says_how_to_withdraw_the_acceptance(
        saved_model, other_model, tmp_path, capsys):
    """Found by exploratory testing: after a rollback for "span-3's drift accepted by mistake" the
    next run accepted span-3 again from the stored acceptance, trained the withdrawn model again
    and was refused, and nothing said why or how to undo the acceptance."""
    from pipeline import configs

    out = tmp_path / "out"
    base = str(out / "serving_model" / "recommender")
    _serve_a_model_trained_on_accepted_drift(saved_model, other_model, base)
    acceptances = configs.PipelineConfig(output_dir=str(out)).drift_acceptances_dir
    os.makedirs(acceptances)
    kept = os.path.join(acceptances, "span-3-vs-span-2-abc123.json")
    open(kept, "w").write("{}")
    open(os.path.join(acceptances, "span-2-vs-span-1-def456.json"), "w").write("{}")
    assert entry_point.main(["rollback", "1796001422", "--reason", "span-3 accepted by mistake",
                             "--output-dir", str(out)]) == 0
    note = capsys.readouterr().out.splitlines()[1]
    assert note.startswith("note: version 1796012949, taken out of service, trained on span-3 with its drift "
                           "accepted (--accept-drift). The acceptance stands: ")
    assert note.endswith(f"delete its acceptance: {kept}")
    # a version trained on a span that passed (or no spans) says nothing more
    assert versions.accepted_drift_note(base, acceptances) is None  # the rollback's copy of 1796001422 is served


def test_a_rollback_of_a_compiled_pipelines_versions_names_where_its_acceptances_are(
        saved_model, other_model, tmp_path, capsys):
    """`--serving-dir` (a compiled pipeline's versions): the acceptances directory is not known, and
    the note names where each runner keeps it. Found by exploratory testing: it said
    `<pipeline root>/drift_acceptances`, where a compiled pipeline keeps them one folder down,
    under its pipeline name (pipeline/configs.py VertexConfig.drift_acceptances_dir)."""
    from pipeline import configs

    base = str(tmp_path / "serving")
    _serve_a_model_trained_on_accepted_drift(saved_model, other_model, base)
    assert entry_point.main(["rollback", "1796001422", "--reason", "span-3 accepted by mistake",
                             "--serving-dir", base]) == 0
    note = capsys.readouterr().out.splitlines()[1]
    compiled = configs.VertexConfig(project="p", region="r", bucket="b", image="i").drift_acceptances_dir
    assert compiled == "gs://b/pipeline_root/drift_acceptances/asos-recommender"
    local = configs.PipelineConfig(output_dir="OUT").drift_acceptances_dir
    assert local == os.path.join("OUT", "pipeline_root", "asos-recommender", "drift_acceptances")
    assert ("span-3-vs-span-2-*.json in the drift acceptances directory (a compiled pipeline's: "
            "<compiled pipeline root>/drift_acceptances/<pipeline name>/; a local run's: "
            "<output dir>/pipeline_root/<pipeline name>/drift_acceptances/;") in note
