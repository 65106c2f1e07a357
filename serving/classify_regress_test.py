"""TF Serving's checks of a signature for Classify, Regress and MultiInference (classifier.cc,
regressor.cc, multi_inference.cc) on SignatureDef protos: no model is needed."""

import pytest
from google.protobuf import text_format
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import inference_pb2

from serving import classify_regress as cr
from serving.status import ServingError


def signature(inputs, outputs, method="tensorflow/serving/predict"):
    s = meta_graph_pb2.SignatureDef(method_name=method)
    for name in inputs:
        s.inputs[name].name = f"{name}:0"
    for name in outputs:
        s.outputs[name].name = f"{name}:0"
    return s


def graph(**signatures):
    g = meta_graph_pb2.MetaGraphDef()
    for key, s in signatures.items():
        g.signature_def[key].CopyFrom(s)
    return g


# the recommender's signatures: predict only
RECOMMENDER = graph(serving_default=signature(["user_id"], ["known_user", "products", "scores"]),
                    call_item_item=signature(["item"], ["known_item", "products", "scores"]),
                    evaluate=signature(["examples"], ["ranks"]))


def error(fn, *args):
    with pytest.raises(ServingError) as e:
        fn(*args)
    return e.value


@pytest.mark.parametrize("name, verb, message", [
    ("", "classify", "Expected one or two output Tensors, found 3"),
    ("call_item_item", "classify", "Expected one or two output Tensors, found 3"),
    ("", "regress", "Expected one output Tensor."),
    ("nope", "classify", "No signature was found with the name: nope"),
    ("nope", "regress", "No signature was found with the name: nope"),
])
def test_a_predict_only_model_gets_tf_servings_invalid_argument(name, verb, message):
    e = error(cr.signature_def, RECOMMENDER, name, verb)
    assert (e.code, e.http_status, e.message) == ("INVALID_ARGUMENT", 400, message)


def test_the_signature_is_named_in_protobufs_text_format():
    e = error(cr.signature_def, RECOMMENDER, "evaluate", "classify")
    assert e.message == "No classification inputs found in SignatureDef: " + text_format.MessageToString(
        RECOMMENDER.signature_def["evaluate"])
    assert 'inputs {\n  key: "examples"' in e.message
    assert error(cr.signature_def, RECOMMENDER, "evaluate", "regress").message.startswith(
        "No regression inputs found in SignatureDef: ")
    e = error(cr.preprocess_classification, signature(["inputs"], ["probabilities"]))
    assert e.message.startswith('Expected classification signature outputs to contain at least one of "classes" '
                                'or "scores". Signature was: ')
    assert error(cr.preprocess_regression, signature(["inputs"], ["y"])).message.startswith(
        "No regression outputs found in SignatureDef: ")
    two_inputs = signature(["a", "b"], ["scores"])
    assert error(cr.preprocess_classification, two_inputs).message == "Expected one input Tensor."


def test_the_method_name_is_not_checked_as_tf_servings_default_flags():
    """--enable_signature_method_name_check is off by default: a predict-method signature shaped for
    classification passes the checks (and this server then answers UNIMPLEMENTED)."""
    shaped = graph(serving_default=signature(["inputs"], ["classes", "scores"]),
                   reg=signature(["inputs"], ["outputs"]))
    assert cr.signature_def(shaped, "", "classify") is not None
    assert cr.signature_def(shaped, "reg", "regress") is not None
    assert cr.not_run("classify").code == "UNIMPLEMENTED"


def test_multi_inference_task_checks():
    def tasks(*specs):
        request = inference_pb2.MultiInferenceRequest()
        for name, sig, method in specs:
            t = request.tasks.add(method_name=method)
            t.model_spec.name, t.model_spec.signature_name = name, sig
        return request.tasks

    classify = "tensorflow/serving/classify"
    shaped = graph(serving_default=signature(["inputs"], ["classes", "scores"]))
    for request_tasks, message in [  # each task is checked in full before the next
        (tasks(("m", "", classify), ("n", "x", classify)),
         "All ModelSpecs in a MultiInferenceRequest must access the same model name."),
        (tasks(("m", "", classify), ("m", "serving_default", classify)),
         "Duplicate evaluation of signature: serving_default"),
    ]:
        assert error(cr.check_multi_inference, shaped, request_tasks).message == message
    cases = [
        (tasks(("", "", classify)), "INVALID_ARGUMENT", "Found ModelSpec with an empty model name."),
        (tasks(("m", "nope", classify)), "INVALID_ARGUMENT", "Requested signature not found in model graph: nope"),
        (tasks(("m", "", classify)), "INVALID_ARGUMENT", "Expected one or two output Tensors, found 3"),
        (tasks(("m", "", "tensorflow/serving/predict")), "UNIMPLEMENTED",
         "Unsupported signature method_name: tensorflow/serving/predict"),
    ]
    for request_tasks, code, message in cases:
        e = error(cr.check_multi_inference, RECOMMENDER, request_tasks)
        assert (e.code, e.message) == (code, message)


def test_a_signature_name_that_is_not_utf8_is_just_not_found():
    """A REST body's bytes that are not UTF-8 arrive as surrogate escapes (json_parse.parse_json):
    looking them up must not fail (it was a 500: protobuf's map encodes its keys)."""
    e = error(cr.signature_def, RECOMMENDER, "s\udcafx", "regress")
    assert (e.code, e.message) == ("INVALID_ARGUMENT", "No signature was found with the name: s\udcafx")
