"""Module code of the pipeline's components: Transform's preprocessing_fn, the Trainer's run_fn
and model, the serving exporter, and the project's custom components."""


def __getattr__(name):
    # Kubeflow V2 names a custom artifact type "<namespace>.<Class>" and imports it back from
    # that path in each container (see catalog_check.CatalogReport). Lazy, so importing
    # `components` stays light.
    if name == "CatalogReport":
        from components.catalog_check import CatalogReport
        return CatalogReport
    if name == "RunReportFile":
        from components.run_report import RunReportFile
        return RunReportFile
    raise AttributeError(f"module 'components' has no attribute {name!r}")
