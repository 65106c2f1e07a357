# The two commands of the README. Both set up their environment themselves (env/run-in-env).
RUN := env/run-in-env
ARGS ?=

.PHONY: run test test-fast lint serve monitor history rollback lock benchmark compile compile-kfp replay

# The code's commit, for the model card of what `make run` pushes (the environment has no git)
run compile compile-kfp replay: export RECSYS_GIT_COMMIT := $(shell git rev-parse HEAD 2>/dev/null)$(shell \
	git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (uncommitted changes)")

run:  ## the full pipeline on the ASOS data
	$(RUN) python local_runner.py $(ARGS)

test:  ## the whole test suite, end-to-end runs included (what CI runs)
	$(RUN) python -m pytest $(ARGS)

lint:  ## ruff over the whole tree (pyproject.toml); CI runs it before the tests
	$(RUN) ruff check .

test-fast:  ## the edit loop: every test not marked e2e (no pipeline run, no model server), about 4 minutes
	$(RUN) python -m pytest -m "not e2e" $(ARGS)

serve:  ## the model server (TF Serving's REST on 8501, gRPC on 8500) for the pushed models; full log in outputs/logs/
	$(RUN) python -m serving --log_file outputs/logs/serve-$$(date -u +%Y%m%d-%H%M%S).log $(ARGS)

history:  ## the pushed versions, newest first: date, data, metrics, verdict; * marks the one served
	$(RUN) python versions.py history $(ARGS)

# A rollback's VERSION and REASON as typed: make would expand a $ in them ($20k -> 0k), the shell
# a quote or backtick; so their unexpanded text goes to the command through the environment
override VERSION := $(value VERSION)
override REASON := $(value REASON)
rollback: export VERSION := $(VERSION)
rollback: export REASON := $(REASON)

rollback:  ## serve VERSION again, as a new version: make rollback VERSION=N REASON="why"
	$(RUN) python versions.py rollback "$$VERSION" --reason "$$REASON" $(ARGS)

monitor:  ## what the served model is asked: make serve's request logs (--request_log_sampling_rate) against the served model; report in outputs/monitoring/
	$(RUN) python -m serving.monitor $(ARGS)

benchmark:  ## pipeline timings, model quality, serving latency and batch time on the ASOS data
	$(RUN) python benchmarks/pipeline_time.py  # into a fresh outputs/benchmark; the others measure its run
	$(RUN) python benchmarks/quality.py --output-dir outputs/benchmark
	$(RUN) python benchmarks/serving_latency.py --output-dir outputs/benchmark
	$(RUN) python benchmarks/serving_load.py --model-base-path outputs/benchmark/serving_model/recommender
	$(RUN) python benchmarks/batch_time.py --output-dir outputs/benchmark

replay:  ## the ASOS train purchases as 4 spans, through the pipeline span by span (outputs/replay/)
	$(RUN) python benchmarks/replay.py $(ARGS)

compile:  ## the Kubeflow V2 / Vertex AI pipeline JSON
	$(RUN) python kubeflow_v2_runner.py $(ARGS)

compile-kfp:  ## the open-source Kubeflow Pipelines 2 package (docs/kubeflow.md)
	$(RUN) python kubeflow_v2_runner.py --target kfp $(ARGS)

lock:  ## re-resolve env/requirements.lock from env/requirements.in (needs uv on the host)
	uv pip compile env/requirements.in --python-version 3.13 --python-platform x86_64-manylinux_2_39 \
	  --generate-hashes --no-header -o env/requirements.lock
