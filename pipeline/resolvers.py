"""The Evaluator's baseline: the latest blessed model other than the candidate itself.

TFX's `LatestBlessedModelStrategy` returns the latest blessed model whatever it is. After a run
that blessed model M, a second run with nothing changed takes M from the Trainer's cache and the
strategy hands back M as its own baseline: the Evaluator's inputs differ from the first run's
(a baseline where there was none), so the Evaluator runs again to compare M with itself, and
everything after it (Pusher, BatchRecommendations, RunReport) runs again too. Leaving the
candidate out of the search gives the first run's baseline back, so the whole run comes from the
cache; a new candidate still gets the latest blessed model as its baseline, as before.

Local runs only: the Kubeflow V2 / Vertex compiler accepts TFX's two stock strategies and no
other (tfx/orchestration/kubeflow/v2/step_builder.py), so the Vertex pipeline keeps
`LatestBlessedModelStrategy` (pipeline/pipeline.py chooses by `config.baseline_excludes_candidate`).
"""

from __future__ import annotations

from typing import Dict, List, Optional

from tfx import types
from tfx import v1 as tfx

MODEL, BLESSING, CANDIDATE = "model", "model_blessing", "candidate"


class LatestBlessedOtherModelStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Inputs: `model` and `model_blessing` (every Model and ModelBlessing of the pipeline, as
    for `LatestBlessedModelStrategy`) and `candidate` (the Trainer's model of this run).
    Outputs: `model` and `model_blessing`, the latest model blessed by an Evaluator other than
    the candidate (empty lists when there is none), and `candidate` unchanged."""

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        del store  # everything needed is in the artifacts' properties
        return {**latest_blessed_other(input_dict.get(MODEL, []), input_dict.get(BLESSING, []),
                                       input_dict.get(CANDIDATE, [])),
                CANDIDATE: list(input_dict.get(CANDIDATE, []))}


def latest_blessed_other(models: List[types.Artifact], blessings: List[types.Artifact],
                         candidates: List[types.Artifact]) -> Dict[str, List[types.Artifact]]:
    """{"model": [the newest blessed model not in `candidates`], "model_blessing": [its
    blessing]}, or empty lists. "Blessed" and "newest" as TFX's LatestBlessedModelStrategy
    reads them: a ModelBlessing with `blessed` = 1 names its model by `current_model_id`; the
    highest artifact id is the newest."""
    excluded = {c.id for c in candidates}
    blessing_of = {b.get_int_custom_property("current_model_id"): b for b in blessings
                   if b.get_int_custom_property("blessed") == 1}
    for model in sorted(models, key=lambda m: m.id, reverse=True):
        if model.id not in excluded and model.id in blessing_of:
            return {MODEL: [model], BLESSING: [blessing_of[model.id]]}
    return {MODEL: [], BLESSING: []}
