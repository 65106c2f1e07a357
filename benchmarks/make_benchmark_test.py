"""`make benchmark` on a fresh clone: the scripts after pipeline_time.py measure the run it made
(found by a fresh-clone run: quality.py looked for the model of a `make run` in outputs/ and
stopped the target with "no pushed model")."""

import os
import re

from benchmarks import pipeline_time
from pipeline import configs


def _recipe(target: str):
    with open(os.path.join(configs.PROJECT_DIR, "Makefile")) as f:
        text = f.read()
    body = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", text, re.M)
    assert body, f"no '{target}' target in the Makefile"
    return [line.strip() for line in body.group(1).splitlines()]


def test_every_benchmark_after_the_pipeline_run_measures_that_run():
    lines = _recipe("benchmark")
    scripts = [re.search(r"benchmarks/(\w+)\.py", line).group(1) for line in lines]
    assert scripts[0] == "pipeline_time" and len(scripts) == 5
    benchmark_dir = os.path.relpath(pipeline_time.DEFAULT_OUTPUT_DIR, configs.PROJECT_DIR)
    for script, line in zip(scripts[1:], lines[1:]):
        assert re.search(rf"(--output-dir|--model-base-path) {re.escape(benchmark_dir)}(/|\s|$)", line), \
            f"{script} does not measure the run pipeline_time.py made in {benchmark_dir}: {line}"
