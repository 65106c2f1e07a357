"""Module code: what Transform and the Trainer run inside their executors (feature names,
`preprocessing_fn`, the recommender, its samplers, `run_fn`, the serving exporter, TFMA metrics).

Imports nothing from `pipeline/` or `components/`: the pipeline names this code by dotted path
(`models.preprocessing.preprocessing_fn`, `models.trainer.run_fn`)."""
