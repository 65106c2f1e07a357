"""What serves the pipelines compiled for Vertex AI and open-source Kubeflow Pipelines 2
(kubeflow_v2_runner.py): their settings from flags or RECSYS_* variables (settings.py, shared
with vertex_submit.py and kfp_submit.py), and a harness that runs a compiled pipeline on this
machine as Vertex AI would (harness.py) or as KFP would (kfp_harness.py). For KFP also: the
backend's rules from its source (kfp_backend.py), the package (kfp_package.py) and the container
entrypoint between the KFP launcher and TFX (kfp_entrypoint.py).

Named `kubeflow_v2` (TFX's name for the pipeline format, KubeflowV2DagRunner) rather than
`kubeflow`: that top-level name is the Kubeflow SDK's (PyPI `kubeflow`, `kubeflow.trainer`,
`kubeflow.katib`), which a package of ours would hide."""
