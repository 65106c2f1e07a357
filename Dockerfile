# The image every Vertex AI / Kubeflow component and every Dataflow worker runs.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/asos-recommender:TAG .
#
# Debian 13 (glibc 2.41 >= 2.38 that ml-metadata/TFDV 1.21 wheels need), Python 3.13, and exactly
# the local environment's packages: env/requirements.lock, hash-checked (as env/run-in-env does).
# The package (pipeline, components) is installed, so the compiled pipeline refers to module code by
# dotted path and nothing is uploaded at compile time. The curated schema is at /pipeline/schema.
# Beam's SDK harness boot (from the Beam SDK image of the locked apache-beam version) is the
# entrypoint, so the same image serves as Dataflow's sdk_container_image; Vertex AI overrides it
# with the command compiled into the pipeline (python -m tfx...kubeflow_v2_run_executor), and so does
# open-source Kubeflow Pipelines (python -m kubeflow_v2.kfp_entrypoint, docs/kubeflow.md).

ARG PYTHON_IMAGE=python:3.13-slim-trixie
ARG BEAM_SDK_IMAGE=apache/beam_python3.13_sdk:2.73.0

FROM ${BEAM_SDK_IMAGE} AS beam_sdk

FROM ${PYTHON_IMAGE} AS build
# g++: pyfarmhash (needed by TFT/TFMA) ships only a source package
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ \
 && rm -rf /var/lib/apt/lists/*
COPY env/requirements.lock /tmp/requirements.lock
# uv itself comes from the lock too (its entry with hashes), then syncs the whole lock.
RUN python -m venv /opt/venv \
 && awk '/^uv==/{p=1; print; next} p && /^    --hash/{print; next} {p=0}' /tmp/requirements.lock > /tmp/uv.txt \
 && /opt/venv/bin/python -m pip install --no-cache-dir --no-deps --require-hashes -r /tmp/uv.txt \
 && /opt/venv/bin/uv pip sync --no-cache --python /opt/venv/bin/python --require-hashes /tmp/requirements.lock
# The package: its dependencies are the lock's (--no-deps), built with the lock's setuptools.
COPY setup.py /src/setup.py
COPY env/requirements.in /src/env/requirements.in
COPY schema/schema.pbtxt /src/schema/schema.pbtxt
COPY local_runner.py kubeflow_v2_runner.py vertex_submit.py kfp_submit.py /src/
COPY cli/ /src/cli/
COPY pipeline/ /src/pipeline/
COPY components/ /src/components/
COPY models/ /src/models/
COPY runner/ /src/runner/
COPY kubeflow_v2/ /src/kubeflow_v2/
COPY serving/ /src/serving/
RUN /opt/venv/bin/uv pip install --no-cache --python /opt/venv/bin/python --no-deps --no-build-isolation /src

# The model server (serving/): `docker build --target serving -t .../asos-recommender-serving:TAG .`
# TF Serving's REST API on 8501 and gRPC on 8500 for the models under MODEL_BASE_PATH (numbered
# versions, polled; a gs:// path works), or, on Vertex AI, AIP_HTTP_PORT / AIP_STORAGE_URI /
# AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE (the custom-container contract). Same venv as the pipeline:
# the TensorFlow that trained the model serves it. No Beam harness.
FROM ${PYTHON_IMAGE} AS serving
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    TF_USE_LEGACY_KERAS=1 \
    PYTHONUNBUFFERED=1 \
    MODEL_NAME=recommender \
    MODEL_BASE_PATH=/models/recommender
RUN python -c "import serving.server, serving.rest, serving.grpc_service, serving.model_manager"
EXPOSE 8501 8500
ENTRYPOINT ["python", "-m", "serving", "--bind_address", "0.0.0.0"]

# The pipeline image (the default target).
FROM ${PYTHON_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
# The schema Importer's source (configs.IMAGE_SCHEMA_DIR): the directory holds that one file.
COPY schema/schema.pbtxt /pipeline/schema/schema.pbtxt
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    TF_USE_LEGACY_KERAS=1 \
    GRPC_ENABLE_FORK_SUPPORT=false \
    PYTHONUNBUFFERED=1 \
    RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1
WORKDIR /pipeline
# Fails the build, not a pipeline run, if the code or Keras 2 is not what the pipeline needs.
RUN python -c "import pipeline, components.catalog_check, components.run_report, components.batch_recommendations, models.preprocessing, models.trainer, tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor, kubeflow_v2.kfp_entrypoint; pipeline.check_keras()"
ENTRYPOINT ["/opt/apache/beam/boot"]
