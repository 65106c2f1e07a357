"""What every command line of the project shares: one way to declare flags and the small parsers
of their values (flags.py). Imports nothing of the project: runners, `kubeflow_v2/`, `serving/`
and the pipeline's shared flags (pipeline/configs.py) all use it."""
