"""What serves the pipelines compiled for Kubeflow Pipelines / Vertex AI (kubeflow_v2_runner.py):
their settings from flags or RECSYS_* variables (settings.py, shared with vertex_submit.py), and
a harness that runs a compiled pipeline JSON on this machine as Vertex AI would (harness.py).

Named `kubeflow_v2` (TFX's name for the pipeline format, KubeflowV2DagRunner) rather than
`kubeflow`: that top-level name is the Kubeflow SDK's (PyPI `kubeflow`, `kubeflow.trainer`,
`kubeflow.katib`), which a package of ours would hide."""
