"""The Evaluator's baseline: the latest blessed model, never the candidate itself."""

from tfx.types import standard_artifacts

from pipeline import resolvers


def _model(artifact_id):
    model = standard_artifacts.Model()
    model.id = artifact_id
    return model


def _blessing(model_id, blessed):
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("current_model_id", model_id)
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def _resolve(models, blessings, candidate):
    out = resolvers.LatestBlessedOtherModelStrategy().resolve_artifacts(
        None, {"model": models, "model_blessing": blessings, "candidate": candidate})
    return [m.id for m in out["model"]], out["model_blessing"], [c.id for c in out["candidate"]]


def test_a_new_candidate_gets_the_latest_blessed_model():
    models = [_model(1), _model(2), _model(3), _model(4)]
    blessings = [_blessing(1, True), _blessing(2, True), _blessing(3, False)]
    ids, [blessing], candidate = _resolve(models, blessings, [models[3]])
    assert ids == [2] and blessing.get_int_custom_property("current_model_id") == 2
    assert candidate == [4]


def test_a_candidate_blessed_before_is_not_its_own_baseline():
    # a second run with nothing changed: the cached model 2 was blessed by the first run
    models = [_model(1), _model(2)]
    ids, _, _ = _resolve(models, [_blessing(1, True), _blessing(2, True)], [models[1]])
    assert ids == [1]  # the first run's baseline again: the Evaluator's inputs are the same
    ids, blessings, _ = _resolve(models[1:], [_blessing(2, True)], [models[1]])
    assert ids == [] and blessings == []  # the first run had none: none again


def test_refused_models_are_never_a_baseline():
    models = [_model(1), _model(2), _model(3)]
    ids, _, _ = _resolve(models, [_blessing(1, False), _blessing(2, False)], [models[2]])
    assert ids == []
