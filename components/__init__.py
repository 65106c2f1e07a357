"""The project's TFX components and executors, which pipeline/pipeline.py wires together: the
parquet reader of ExampleGen over spans (parquet_example_gen.py, spans.py), StrictExampleValidator
(validator.py), the drift gate between spans (drift.py), CatalogCheck (catalog_check.py),
ServedBaseline (baseline.py: the served model as the run's baseline), the Trainer that tells
run_fn its baseline (trainer.py), the Evaluator with its gate (evaluator.py) and its optional
sample of eval users (eval_sample.py), the Pusher that skips a model already served (pusher.py),
BatchRecommendations (batch_recommendations.py) and the run's HTML report (run_report.py). The
module code they run (preprocessing_fn, run_fn, the model, the serving exporter, the TFMA
metrics) is in models/."""


def __getattr__(name):
    # Kubeflow V2 names a custom artifact type "<namespace>.<Class>" and imports it back from
    # that path in each container (see catalog_check.CatalogReport). Lazy, so importing
    # `components` stays light.
    if name == "CatalogReport":
        from components.catalog_check import CatalogReport
        return CatalogReport
    if name == "DriftReport":
        from components.drift import DriftReport
        return DriftReport
    if name == "RunReportFile":
        from components.run_report import RunReportFile
        return RunReportFile
    raise AttributeError(f"module 'components' has no attribute {name!r}")
