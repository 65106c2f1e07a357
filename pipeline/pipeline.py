"""The recommender pipeline, defined once. Knows no runner: local_runner.py runs it on Beam's
in-process FnApiRunner, kubeflow_v2_runner.py compiles it for Kubeflow Pipelines / Vertex AI."""

from __future__ import annotations

import os
from typing import Optional, Union

from tfx import v1 as tfx
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from components import evaluator as evaluator_lib
from components import parquet_example_gen, spans
from components.baseline import ServedBaseline
from components.batch_recommendations import BatchRecommendations
from components.catalog_check import CatalogCheck
from components.eval_sample import EvalSample
from components.drift import DriftGate
from components.evaluator import GatedEvaluator
from components.pusher import DedupPusher
from components.run_report import RunReport
from components.trainer import Trainer, VertexTrainer
from components.validator import StrictExampleValidator
from models import trainer as trainer_module
from pipeline import code_fingerprint, configs


def create_pipeline(config: Union[configs.PipelineConfig, configs.VertexConfig],
                    pinned_baseline: Optional[str] = None) -> tfx.dsl.Pipeline:
    """ExampleGen → StatisticsGen, schema → StrictExampleValidator, DriftGate → Transform →
    CatalogCheck → Trainer (warm-started from the served model) → Evaluator (vs the served model)
    → Pusher → BatchRecommendations (every known user's top-K lists, of the model pushed or
    already served only).

    The one mapping from configuration to the pipeline, for both runners: a local run's
    `PipelineConfig` (SQLite ML Metadata at `metadata_path`) and a Vertex run's `VertexConfig`
    (no `metadata_path`: Vertex keeps ML Metadata) name the same things the same way.
    `pinned_baseline`: the run's baseline when the runner decided it before the run (the local
    runner: runner/baseline.py); None: ServedBaseline decides when it runs."""
    training, gate = config.training, config.gate
    example_gen = FileBasedExampleGen(
        input_base=config.data_root,
        # plain globs, the flat files and the span folders' (components/spans.py): TFX's driver
        # fingerprints every file; the executor picks the newest span, the window and the eval file
        input_config=spans.input_config(configs.SPLIT_PATTERNS["train"], configs.SPLIT_PATTERNS["eval"]),
        custom_config=parquet_example_gen.window_config(config.span_window),
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
    drift_gate = DriftGate(  # the newest span against the previous one (components/drift.py)
        examples=example_gen.outputs["examples"],
        schema=schema,
        thresholds=config.drift.thresholds,
        accept_drift=config.drift.accept,
        acceptances_dir=config.drift_acceptances_dir,
        serving_model_dir=config.serving_model_dir,  # a span older than the served model's: late
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
    transform.add_upstream_node(drift_gate)  # likewise: a drifted span stops the run here
    catalog_check = CatalogCheck(
        transform_graph=transform.outputs["transform_graph"], catalog_uri=config.catalog_uri)

    trainer_config = {**training.custom_config(),
                      "module_code": code_fingerprint.fingerprint(configs.RUN_FN)}
    # the baseline (DECISIONS D3): the served model, read from the Pusher's base directory, for
    # the Trainer's warm start and the Evaluator's comparison alike
    served_baseline = ServedBaseline(
        examples=example_gen.outputs["examples"],
        input_base=example_gen.exec_properties["input_base"],
        input_config=example_gen.exec_properties["input_config"],
        serving_model_dir=config.serving_model_dir,
        training_key=trainer_module.training_key(trainer_config),
        pinned_version=pinned_baseline,
    )
    served_baseline.add_upstream_node(catalog_check)  # no copy of a model for rejected data
    # on Vertex with a trainer machine type: a Vertex AI Training custom job (docs/vertex.md)
    vertex_training = getattr(config, "vertex_training_custom_config", lambda: None)()
    trainer = (VertexTrainer if vertex_training else Trainer)(
        run_fn=configs.RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        base_model=served_baseline.outputs["model"],
        train_args=tfx.proto.TrainArgs(splits=["train"]),  # epochs, not steps: custom_config
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={**trainer_config, **(vertex_training or {})},
    ).with_id("Trainer")  # the same task name whichever class trains
    trainer.add_upstream_node(catalog_check)  # a catalog mismatch stops before training
    eval_examples, eval_sample = example_gen.outputs["examples"], None
    if gate.eval_users:  # a seeded sample of eval users, for the Evaluator and the report
        eval_sample = EvalSample(examples=eval_examples, users=gate.eval_users)
        eval_examples = eval_sample.outputs["sampled"]
    evaluator = GatedEvaluator(
        examples=eval_examples,  # raw ids: the model holds the vocabularies
        model=trainer.outputs["model"],
        baseline_model=served_baseline.outputs["model"],
        eval_config=evaluator_lib.eval_config(**gate.eval_config_args()),
        example_splits=["eval"],
        # TFMA imports the metrics by module name: TFX's cache does not see a change in that code
        module_code=code_fingerprint.module_fingerprint(evaluator_lib.METRICS_MODULE),
    ).with_id("Evaluator")
    pusher = DedupPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_model_dir)),
        # what the version's model card is made of (components/model_card.py)
        model_name=configs.MODEL_NAME,
        examples=example_gen.outputs["examples"],
        model_run=trainer.outputs["model_run"],
        evaluation=evaluator.outputs["evaluation"],
        anomalies=example_validator.outputs["anomalies"],
        drift_report=drift_gate.outputs["drift_report"],
        data_files=[os.path.join(config.data_root, p) for p in configs.SPLIT_PATTERNS.values()]
        + [config.catalog_uri],
    ).with_id("Pusher")
    batch_recommendations = BatchRecommendations(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],  # a refused model gets no lists
        pushed_model=pusher.outputs["pushed_model"],  # nor one the Pusher left out: lists of what serves
        transform_graph=transform.outputs["transform_graph"],  # its user vocabulary: who gets lists
        bigquery_table=config.batch_bigquery_table,
    ).with_id("BatchRecommendations")

    run_report = RunReport(  # the run's HTML report, last: it tells what the Pusher did
        pipeline_name=config.pipeline_name,
        examples=example_gen.outputs["examples"],
        anomalies=example_validator.outputs["anomalies"],
        drift_report=drift_gate.outputs["drift_report"],
        catalog_report=catalog_check.outputs["catalog_report"],
        transform_graph=transform.outputs["transform_graph"],
        transformed_examples=transform.outputs["transformed_examples"],
        model=trainer.outputs["model"],
        model_run=trainer.outputs["model_run"],
        baseline_model=served_baseline.outputs["model"],
        evaluation=evaluator.outputs["evaluation"],
        pushed_model=pusher.outputs["pushed_model"],
        batch_recommendations=batch_recommendations.outputs["recommendations"],
        monitoring_dir=config.monitoring_dir,  # make monitor's latest report, linked when there is one
        eval_examples=eval_sample.outputs["sampled"] if eval_sample else None,
    )

    components = [example_gen, statistics_gen, schema_importer, example_validator, drift_gate, transform,
                  catalog_check, served_baseline, trainer, evaluator, pusher,
                  batch_recommendations, run_report] + ([eval_sample] if eval_sample else [])
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
