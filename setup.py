"""The recommender pipeline as an installable package: what the container image runs.

    pip install --no-deps .          # in the image (Dockerfile): versions come from env/requirements.lock
    pip install .                    # elsewhere: the top-level pins of env/requirements.in

Installs the packages `pipeline` (the pipeline definition), `components`, `models` (module code,
referenced by dotted path, e.g. models.preprocessing.preprocessing_fn), `runner` (the local run's
tooling), `kubeflow_v2` (the Vertex AI / Kubeflow settings and the local harness), `serving` (the
model server) and `cli` (the flags every command declares), the runner and submit modules with
console commands, and the curated schema under <prefix>/share/asos-recommender/schema (the image also
copies it to /pipeline/schema, where the compiled pipeline's schema Importer points).
"""

import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "asos-recommender"
CONSOLE_SCRIPTS = [
    "asos-recsys-run = local_runner:command",       # the pipeline on this machine
    "asos-recsys-compile = kubeflow_v2_runner:main",  # the Vertex AI / Kubeflow pipeline JSON
    "asos-recsys-submit = vertex_submit:main",       # that JSON to Vertex AI Pipelines
    "asos-recsys-submit-kfp = kfp_submit:main",      # the KFP package to open-source Kubeflow Pipelines
]
TOOLS = {"pytest", "pip", "setuptools", "wheel", "uv"}  # the environment's, not the package's


def requirements():
    path = os.path.join(HERE, "env", "requirements.in")
    if not os.path.exists(path):
        return []
    reqs = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            name = line.split("[")[0].split("=")[0].split("<")[0].split(">")[0].split("~")[0].strip()
            if line and name.lower() not in TOOLS:
                reqs.append(line)
    return reqs


setup(
    name=NAME,
    version="0.1.0",
    description="ASOS recommender: a TFX 1.21 pipeline, run locally or on Vertex AI Pipelines",
    python_requires=">=3.13,<3.14",
    packages=["cli", "pipeline", "components", "models", "runner", "kubeflow_v2", "serving"],
    py_modules=["local_runner", "kubeflow_v2_runner", "vertex_submit", "kfp_submit"],
    data_files=[(f"share/{NAME}/schema", ["schema/schema.pbtxt"])],
    install_requires=requirements(),
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
