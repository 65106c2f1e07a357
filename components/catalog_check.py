"""CatalogCheck: the product catalog file against Transform's product vocabulary.

- A product bought in train but absent from the catalog means the purchases and the catalog
  disagree: the run fails (the Trainer depends on this component, so nothing is trained).
- Catalog products never bought in train are reported (count and examples): the model has no
  embedding for them and cannot recommend them.
The report is the `catalog_report` artifact (report.json) with its figures as custom properties.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List

import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from models import features

REPORT_FILE = "report.json"
SAMPLE_SIZE = 20
log = logging.getLogger("recsys.catalog")  # the console shows it (runner/console.py)


class CatalogReport(artifact.Artifact):
    # Kubeflow V2 wants "<namespace>.<Class>" and re-imports the class from it in each
    # container: components/__init__.py exposes it as components.CatalogReport.
    TYPE_NAME = "components.CatalogReport"


class CatalogMismatchError(RuntimeError):
    """Products were bought that the catalog does not list."""


class CatalogFormatError(ValueError):
    """The catalog file is not product ids one a line; the message names the file and line."""


def read_catalog(path: str) -> List[int]:
    """Product ids, one a line; the first line may be the header `productId` (as pandas'
    `to_csv` writes it). Raises CatalogFormatError naming the first bad line, or a catalog
    without ids."""
    ids = []
    with tf.io.gfile.GFile(path) as f:
        for number, line in enumerate(f, start=1):
            text = line.strip()
            if not text or (number == 1 and text.strip('"') == features.PRODUCT_KEY):
                continue
            try:
                ids.append(int(text))
            except ValueError:
                hint = (f" (a header line may only be {features.PRODUCT_KEY!r})"
                        if number == 1 else "")
                raise CatalogFormatError(
                    f"{path}, line {number}: {text!r} is not an integer product id{hint}") from None
    if not ids:
        raise CatalogFormatError(f"{path}: no product ids (the catalog lists one a line)")
    return ids


def compare(vocabulary: List[int], catalog: List[int]) -> Dict[str, Any]:
    vocab_set, catalog_set = set(vocabulary), set(catalog)
    not_in_vocab = sorted(catalog_set - vocab_set)
    not_in_catalog = sorted(vocab_set - catalog_set)
    return {
        "catalog_products": len(catalog_set),
        "vocabulary_products": len(vocab_set),
        "catalog_products_not_in_vocabulary": len(not_in_vocab),
        "catalog_products_not_in_vocabulary_sample": not_in_vocab[:SAMPLE_SIZE],
        "vocabulary_products_not_in_catalog": len(not_in_catalog),
        "vocabulary_products_not_in_catalog_sample": not_in_catalog[:SAMPLE_SIZE],
    }


def summary_text(report: Dict[str, Any]) -> str:
    """The console's line of a `compare` report: "29,696 catalog products, 29,696 in the train
    vocabulary: each was bought in train" (found by exploratory testing: 115 to 174 columns, in
    more words)."""
    never = report["catalog_products_not_in_vocabulary"]
    return (f"{report['catalog_products']:,} catalog products, {report['vocabulary_products']:,} in the train "
            "vocabulary: " + (f"{never:,} never bought in train cannot be recommended (e.g. "
                              f"{', '.join(map(str, report['catalog_products_not_in_vocabulary_sample'][:5]))})"
                              if never else "each was bought in train"))


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        transform_output = tft.TFTransformOutput(
            artifact_utils.get_single_uri(input_dict["transform_graph"]))
        vocabulary = [int(t) for t in transform_output.vocabulary_by_name(features.PRODUCT_VOCAB)]
        catalog_path = exec_properties["catalog_uri"]
        report = compare(vocabulary, read_catalog(catalog_path))
        report["catalog_uri"] = catalog_path

        out = artifact_utils.get_single_instance(output_dict["catalog_report"])
        tf.io.gfile.makedirs(out.uri)  # Vertex creates no directory for an output artifact
        with tf.io.gfile.GFile(os.path.join(out.uri, REPORT_FILE), "w") as f:
            json.dump(report, f, indent=2)
        for key in ("catalog_products", "vocabulary_products",
                    "catalog_products_not_in_vocabulary", "vocabulary_products_not_in_catalog"):
            out.set_int_custom_property(key, report[key])

        log.info("[catalog] %s", summary_text(report))
        if report["vocabulary_products_not_in_catalog"]:
            raise CatalogMismatchError(
                f"{report['vocabulary_products_not_in_catalog']} product(s) bought in train are "
                f"not in the catalog {catalog_path}, e.g. "
                f"{report['vocabulary_products_not_in_catalog_sample']}; fix the catalog or the "
                f"purchases (report: {os.path.join(out.uri, REPORT_FILE)})")


class CatalogCheckSpec(ComponentSpec):
    PARAMETERS = {"catalog_uri": ExecutionParameter(type=str)}
    INPUTS = {"transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph)}
    OUTPUTS = {"catalog_report": ChannelParameter(type=CatalogReport)}


class CatalogCheck(base_component.BaseComponent):
    """Checks the catalog file against the product vocabulary (see the module docstring)."""

    SPEC_CLASS = CatalogCheckSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, transform_graph: types.BaseChannel, catalog_uri: str):
        super().__init__(spec=CatalogCheckSpec(
            transform_graph=transform_graph,
            catalog_uri=catalog_uri,
            catalog_report=types.Channel(type=CatalogReport)))
