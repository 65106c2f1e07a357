"""TF Serving's Classify, Regress and MultiInference APIs up to the point where they would run the
model: the same checks, in the same order, with the same errors, so a client that calls
`:classify` / `:regress` (REST) or `Classify` / `Regress` / `MultiInference` (gRPC) on a model
without such signatures gets TF Serving's answer (INVALID_ARGUMENT, HTTP 400, naming what the
signature lacks), not a generic one.

Ported from tensorflow_serving/servables/tensorflow/classifier.cc (GetClassificationSignatureDef,
PreProcessClassification), regressor.cc (GetRegressionSignatureDef, PreProcessRegression) and
multi_inference.cc (TensorFlowMultiInferenceRunner::Infer), as TF Serving runs them with its default
flags: --enable_signature_method_name_check is off, so a signature's method_name is not checked,
its inputs and outputs are.

A signature that passes every check (a real classification or regression signature: one input
`inputs` of serialized tf.Examples) is answered UNIMPLEMENTED: this server runs Predict only.
The recommender's SavedModel has predict signatures only.
"""

from __future__ import annotations

from typing import Optional

from google.protobuf import text_format
from tensorflow.core.protobuf import meta_graph_pb2

from serving.status import ServingError, invalid_argument

CLASSIFY = "classify"
REGRESS = "regress"
CLASSIFY_METHOD = "tensorflow/serving/classify"  # signature_constants.h
REGRESS_METHOD = "tensorflow/serving/regress"
CLASSIFY_INPUTS = "inputs"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"
REGRESS_INPUTS = "inputs"
REGRESS_OUTPUTS = "outputs"
DEFAULT_SIGNATURE = "serving_default"


def _debug_string(signature: meta_graph_pb2.SignatureDef) -> str:
    """SignatureDef::DebugString(): protobuf's text format (map entries sorted by key, as C++ prints them)."""
    return text_format.MessageToString(signature)


def preprocess_classification(signature: meta_graph_pb2.SignatureDef) -> None:
    """PreProcessClassification: one input named `inputs`, one or two outputs among `classes`/`scores`."""
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise invalid_argument("Expected one or two output Tensors, found ", len(signature.outputs))
    if CLASSIFY_INPUTS not in signature.inputs:
        raise invalid_argument("No classification inputs found in SignatureDef: ", _debug_string(signature))
    if CLASSIFY_OUTPUT_CLASSES not in signature.outputs and CLASSIFY_OUTPUT_SCORES not in signature.outputs:
        raise invalid_argument("Expected classification signature outputs to contain at least one of \"",
                               CLASSIFY_OUTPUT_CLASSES, "\" or \"", CLASSIFY_OUTPUT_SCORES,
                               "\". Signature was: ", _debug_string(signature))


def preprocess_regression(signature: meta_graph_pb2.SignatureDef) -> None:
    """PreProcessRegression: one input named `inputs`, one output named `outputs`."""
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if REGRESS_INPUTS not in signature.inputs:
        raise invalid_argument("No regression inputs found in SignatureDef: ", _debug_string(signature))
    if REGRESS_OUTPUTS not in signature.outputs:
        raise invalid_argument("No regression outputs found in SignatureDef: ", _debug_string(signature))


def signature_def(meta_graph: meta_graph_pb2.MetaGraphDef, signature_name: str,
                  verb: str) -> meta_graph_pb2.SignatureDef:
    """GetClassificationSignatureDef / GetRegressionSignatureDef: the named signature (default
    serving_default), checked for `verb` ("classify" or "regress")."""
    key = signature_name or DEFAULT_SIGNATURE
    if key not in set(meta_graph.signature_def):  # a Python set: a REST name may hold non-UTF-8 bytes
        raise invalid_argument("No signature was found with the name: ", key)
    signature = meta_graph.signature_def[key]
    (preprocess_classification if verb == CLASSIFY else preprocess_regression)(signature)
    return signature


def not_run(verb: str) -> ServingError:
    """The answer for a request that passed every check TF Serving makes before running the model."""
    return ServingError("UNIMPLEMENTED", f"{verb} is not implemented by this server (it runs Predict "
                                         "only): call the signature with predict")


def check_multi_inference(meta_graph: meta_graph_pb2.MetaGraphDef, tasks) -> None:
    """TensorFlowMultiInferenceRunner::Infer's checks of the tasks (after the servable of the first
    task's model spec was found)."""
    model_name: Optional[str] = None
    seen = set()
    for task in tasks:
        if not task.model_spec.name:
            raise invalid_argument("Found ModelSpec with an empty model name.")
        if model_name is None:
            model_name = task.model_spec.name
        elif model_name != task.model_spec.name:
            raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        key = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if key in seen:
            raise invalid_argument("Duplicate evaluation of signature: ", key)
        seen.add(key)
        if key not in meta_graph.signature_def:
            raise invalid_argument("Requested signature not found in model graph: ", key)
        if task.method_name == CLASSIFY_METHOD:
            preprocess_classification(meta_graph.signature_def[key])
        elif task.method_name == REGRESS_METHOD:
            preprocess_regression(meta_graph.signature_def[key])
        else:
            raise ServingError("UNIMPLEMENTED", f"Unsupported signature method_name: {task.method_name}")
