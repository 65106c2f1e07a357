"""The local run's baseline, decided before the run (components/baseline.py, "When it is decided").

The local runner knows, before anything runs, what ServedBaseline would decide: the served
version and its training.json are on this machine, and the data's fingerprint is what
ExampleGen's driver will compute from the same files (TFX's, over every file its patterns
match: sizes and modification times). The answer is compiled into the component as
`pinned_version`, so TFX's cache key holds it: a rerun with nothing changed finds the same
answer and takes the component, and everything after it, from the cache; a new served version,
new data or another training configuration makes a new answer, and the component runs.
"""

from __future__ import annotations

from typing import List, Optional

from tfx.components.example_gen.component import FileBasedExampleGen

from components import baseline, parquet_example_gen, spans


def pinned_version(serving_model_dir: str, tfx_pipeline) -> str:
    """ServedBaseline's answer for `tfx_pipeline` (built without one): a version, or
    baseline.PIN_NONE."""
    served = next(n for n in tfx_pipeline.components if isinstance(n, baseline.ServedBaseline))
    props = served.exec_properties
    fingerprint = baseline.data_fingerprint(props["input_base"], props["input_config"])
    decision = baseline.decide(serving_model_dir, fingerprint, props["training_key"],
                               window_spans(tfx_pipeline))
    return decision.version or baseline.PIN_NONE


def window_spans(tfx_pipeline) -> Optional[List[int]]:
    """The spans ExampleGen will train on (its executor's selection: components/spans.py), None
    when the data directory's layout cannot be read (the run then stops on it anyway)."""
    example_gen = next(n for n in tfx_pipeline.components if isinstance(n, FileBasedExampleGen))
    try:
        _, selection = parquet_example_gen.select_spans(example_gen.exec_properties)
    except spans.SpanLayoutError:
        return None
    return [span.number for span in selection.window]
