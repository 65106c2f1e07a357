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
    Outputs: `model` and `model_blessing`, what TFX's `LatestBlessedModelStrategy` resolves
    from every model but the candidate (empty lists when no other model was blessed), and
    `candidate` unchanged."""

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        candidates = list(input_dict.get(CANDIDATE, []))
        excluded = {c.id for c in candidates}
        others = {MODEL: [m for m in input_dict.get(MODEL, []) if m.id not in excluded],
                  BLESSING: list(input_dict.get(BLESSING, []))}
        resolved = tfx.dsl.experimental.LatestBlessedModelStrategy().resolve_artifacts(store, others)
        return {**resolved, CANDIDATE: candidates}
