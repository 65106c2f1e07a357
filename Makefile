# The two commands of the README. Both set up their environment themselves (env/run-in-env).
RUN := env/run-in-env
ARGS ?=

.PHONY: run test serve lock benchmark compile compile-kfp

run:  ## the full pipeline on the ASOS data
	$(RUN) python local_runner.py $(ARGS)

test:  ## the test suite
	$(RUN) python -m pytest $(ARGS)

serve:  ## the model server (TF Serving's REST on 8501, gRPC on 8500) for the pushed models; full log in outputs/logs/
	$(RUN) python -m serving --log_file outputs/logs/serve-$$(date -u +%Y%m%d-%H%M%S).log $(ARGS)

benchmark:  ## pipeline timings, model quality, serving latency and batch time on the ASOS data
	$(RUN) python benchmarks/pipeline_time.py
	$(RUN) python benchmarks/quality.py
	$(RUN) python benchmarks/serving_latency.py
	$(RUN) python benchmarks/serving_load.py
	$(RUN) python benchmarks/batch_time.py --output-dir outputs/benchmark  # the run pipeline_time.py left

compile:  ## the Kubeflow V2 / Vertex AI pipeline JSON
	$(RUN) python kubeflow_v2_runner.py $(ARGS)

compile-kfp:  ## the open-source Kubeflow Pipelines 2 package (docs/kubeflow.md)
	$(RUN) python kubeflow_v2_runner.py --target kfp $(ARGS)

lock:  ## re-resolve env/requirements.lock from env/requirements.in (needs uv on the host)
	uv pip compile env/requirements.in --python-version 3.13 --python-platform x86_64-manylinux_2_39 \
	  --generate-hashes --no-header -o env/requirements.lock
