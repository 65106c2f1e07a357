"""The recommender pipeline, defined once. Knows no runner: local_runner.py runs it on Beam's
in-process FnApiRunner, kubeflow_v2_runner.py compiles it for Kubeflow Pipelines / Vertex AI."""

from __future__ import annotations

from typing import Union

from tfx import v1 as tfx
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import evaluator as evaluator_lib
from components import parquet_example_gen
from components.batch_recommendations import BatchRecommendations
from components.catalog_check import CatalogCheck
from components.evaluator import GatedEvaluator
from components.pusher import DedupPusher
from components.run_report import RunReport
from components.validator import StrictExampleValidator
from pipeline import code_fingerprint, configs, resolvers


def create_pipeline(config: Union[configs.PipelineConfig, configs.VertexConfig]) -> tfx.dsl.Pipeline:
    """ExampleGen → StatisticsGen, schema → StrictExampleValidator → Transform → CatalogCheck →
    Trainer → Evaluator (vs the latest blessed model) → Pusher, and beside it
    BatchRecommendations (every known user's top-K lists, blessed models only).

    The one mapping from configuration to the pipeline, for both runners: a local run's
    `PipelineConfig` (SQLite ML Metadata at `metadata_path`) and a Vertex run's `VertexConfig`
    (no `metadata_path`: Vertex keeps ML Metadata) name the same things the same way."""
    training, gate = config.training, config.gate
    example_gen = FileBasedExampleGen(
        input_base=config.data_root,
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name=name, pattern=pattern)
            for name, pattern in configs.SPLIT_PATTERNS.items()
        ]),
        # parquet a record batch at a time, not row by row as TFX's parquet_executor
        # (components/parquet_example_gen.py)
        custom_executor_spec=executor_spec.BeamExecutorSpec(parquet_example_gen.Executor),
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    if getattr(config, "schema_from_task", False):  # open-source KFP: its importer takes bucket URIs only
        schema_importer = tfx.components.ImportSchemaGen(schema_file=f"{config.schema_dir}/schema.pbtxt")
        schema = schema_importer.outputs["schema"]
    else:
        schema_importer = tfx.dsl.Importer(
            source_uri=config.schema_dir, artifact_type=tfx.types.standard_artifacts.Schema,
        ).with_id("schema_importer")
        schema = schema_importer.outputs["result"]
    example_validator = StrictExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema,
        examples=example_gen.outputs["examples"],
        min_rows=config.min_split_rows,
    )
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema,
        preprocessing_fn=configs.PREPROCESSING_FN,
        # The raw data's statistics and anomalies are StatisticsGen's and the validator's; TFDV
        # again on the input and on two integer indices would add two statistics passes for nothing.
        disable_statistics=True,
        # dotted path: TFX's cache does not see a change in that code, its fingerprint does
        custom_config={"module_code": code_fingerprint.fingerprint(configs.PREPROCESSING_FN)},
    )
    # Transform reads the examples, not the anomalies: this edge is what makes a failed
    # validation stop the pipeline before anything learns from the data.
    transform.add_upstream_node(example_validator)
    catalog_check = CatalogCheck(
        transform_graph=transform.outputs["transform_graph"], catalog_uri=config.catalog_uri)

    trainer = tfx.components.Trainer(
        run_fn=configs.RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        train_args=tfx.proto.TrainArgs(splits=["train"]),  # epochs, not steps: custom_config
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={**training.custom_config(),
                       "module_code": code_fingerprint.fingerprint(configs.RUN_FN)},
    )
    trainer.add_upstream_node(catalog_check)  # a catalog mismatch stops before training
    every_model = {"model": tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
                   "model_blessing": tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing)}
    if config.baseline_excludes_candidate:  # a run with nothing changed comes whole from the cache
        latest_blessed_model = tfx.dsl.Resolver(
            strategy_class=resolvers.LatestBlessedOtherModelStrategy,
            candidate=trainer.outputs["model"], **every_model)
    else:  # the only baseline strategy the Vertex compiler accepts
        latest_blessed_model = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy, **every_model)
    latest_blessed_model = latest_blessed_model.with_id("latest_blessed_model_resolver")
    baseline = latest_blessed_model.outputs["model"]
    if not getattr(config, "baseline_resolver", True):  # open-source KFP runs no resolver (until D3)
        latest_blessed_model = baseline = None
    evaluator = GatedEvaluator(
        examples=example_gen.outputs["examples"],  # raw ids: the model holds the vocabularies
        model=trainer.outputs["model"],
        baseline_model=baseline,
        eval_config=evaluator_lib.eval_config(gate.lower_bounds, gate.max_relative_drop),
        example_splits=["eval"],
    ).with_id("Evaluator")
    pusher = DedupPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_model_dir)),
    ).with_id("Pusher")
    batch_recommendations = BatchRecommendations(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],  # a refused model gets no lists
        transform_graph=transform.outputs["transform_graph"],  # its user vocabulary: who gets lists
        bigquery_table=config.batch_bigquery_table,
    ).with_id("BatchRecommendations")

    run_report = RunReport(  # the run's HTML report, last: it tells what the Pusher did
        pipeline_name=config.pipeline_name,
        examples=example_gen.outputs["examples"],
        anomalies=example_validator.outputs["anomalies"],
        catalog_report=catalog_check.outputs["catalog_report"],
        transform_graph=transform.outputs["transform_graph"],
        transformed_examples=transform.outputs["transformed_examples"],
        model=trainer.outputs["model"],
        model_run=trainer.outputs["model_run"],
        baseline_model=baseline,
        evaluation=evaluator.outputs["evaluation"],
        pushed_model=pusher.outputs["pushed_model"],
        batch_recommendations=batch_recommendations.outputs["recommendations"],
    )

    components = [c for c in (example_gen, statistics_gen, schema_importer, example_validator, transform,
                              catalog_check, trainer, latest_blessed_model, evaluator, pusher,
                              batch_recommendations, run_report) if c is not None]
    deploy = getattr(config, "vertex_deploy_custom_config", lambda: None)()
    if deploy:  # Vertex only, when an endpoint is named: the same blessed model, also on an endpoint
        components.append(tfx.extensions.google_cloud_ai_platform.Pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            custom_config=deploy,
        ).with_id("VertexEndpointPusher"))
    metadata = (tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
                if config.metadata_path else None)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=config.beam_pipeline_args(),
    )
