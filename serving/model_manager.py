"""Model versions as TF Serving manages them with its default policy (latest version only).

The base path holds numbered version directories; a version is complete when its
`saved_model.pb` exists (the Pusher renames a whole version into place, or on an object store
copies that file last). A background thread polls the base path every `poll_seconds`: when the
newest complete version is not the one served, it is loaded (plain `tf.saved_model.load`, no
project code), warmed up, and swapped in with one assignment, so requests never see a
half-loaded model; requests already running finish on the old version, which is then unloaded.

A load that fails is retried as TF Serving retries it (`--max_num_load_retries`, default 5,
every `--load_retry_interval_micros`, default one minute; util/retrier.cc): the status shows the
version LOADING meanwhile, the current version keeps serving, and a version whose files were
still arriving is served once they are all there. The retries stop when the version is no
longer the newest (TF Serving cancels a retry once the version is no longer aspired; here that
is noticed at the next poll, not after the wait). After the last retry the version is END with
TF Serving's error code and message, and it is not tried again (TF Serving's
`enable_reload_servables_with_error` is off and no flag sets it) until it disappears and comes
back, or its `saved_model.pb` changes. A base path that is itself a SavedModel (Vertex AI's
AIP_STORAGE_URI points at one) is served as version 1. `gs://` paths work (tf.io.gfile).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from google.protobuf import json_format, message
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from serving import DEFAULT_LOAD_RETRY_INTERVAL_MICROS, DEFAULT_MAX_NUM_LOAD_RETRIES, status
from serving.batcher import Batcher
from serving.json_tensor import NUMPY_DTYPES, dtype_name
from serving.status import ServingError, invalid_argument, not_found
from serving.version_names import version_number

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
SAVED_MODEL_FILE = "saved_model.pb"
SERVE_TAG = "serve"
SIGNATURE_DEF_FIELD = "signature_def"
State = get_model_status_pb2.ModelVersionStatus.State


class Signature:
    """One SignatureDef of a loaded version, callable on numpy arrays."""

    def __init__(self, name: str, definition: meta_graph_pb2.SignatureDef, function):
        self.name = name
        self.definition = definition
        self.function = function
        self.input_dtypes = {k: v.dtype for k, v in definition.inputs.items()}
        self.input_shapes = {k: _dims(v) for k, v in definition.inputs.items()}
        self.output_names = sorted(definition.outputs)
        # batchable: every input and output is batched on a dimension 0 of any size
        self.batchable = bool(definition.inputs) and all(
            s is not None and len(s) >= 1 and s[0] == -1 for s in self.input_shapes.values()) and all(
            (d := _dims(v)) is not None and len(d) >= 1 and d[0] == -1 for v in definition.outputs.values())
        self.batcher: Optional[Batcher] = None

    def run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        outputs = self.function(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    def check_input_names(self, names) -> None:
        """predict_util.cc's VerifyRequestInputsSize, then the names as TensorFlow's
        saved_model::GetInputValues (tensorflow/cc/saved_model/util.cc) checks them."""
        sent, expected = set(names), set(self.input_dtypes)
        if len(sent) > len(expected) or (len(sent) < len(expected) and not self.definition.defaults):
            raise invalid_argument(
                "input size does not match signature: ", len(sent), "!=", len(expected),
                " len({", ",".join(sorted(sent)), "}) != len({", ",".join(sorted(expected)),
                "}). Sent extra: {", ",".join(sorted(sent - expected)), "}. Missing but required: {",
                ",".join(sorted(expected - sent)), "}.")
        for alias in sorted(expected - sent):
            if alias not in self.definition.defaults:
                raise invalid_argument(
                    "Signature input alias: ", alias, "(feed name: ", self.definition.inputs[alias].name,
                    ") not found in request and no default value provided. Inputs expected to be in the "
                    "request {", ",".join(sorted(sent)), "}, or default input alias set: ",
                    ",".join(sorted(self.definition.defaults)))
        if sent - expected:
            raise invalid_argument("Inputs contains invalid name. Used request inputs: ",
                                   ",".join(sorted(sent & expected)), ", request input: ", ",".join(sorted(sent)))

    def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        """The names (check_input_names), then the types and shapes TF would refuse."""
        self.check_input_names(inputs)
        if set(inputs) != set(self.input_dtypes):  # defaults would be needed: not supported here
            raise invalid_argument("Signature '", self.name, "' has default inputs, which this server does "
                                   "not fill in: send every input {", ",".join(sorted(self.input_dtypes)), "}")
        # TensorFlow's DirectSession numbers the feeds by their sorted tensor names; a feed of the
        # wrong type fails its FunctionCallFrame::SetArgs (what TF Serving's gRPC clients see,
        # e.g. tensorflow/serving#1495; REST always builds the signature's type)
        feeds = sorted(self.definition.inputs[name].name for name in inputs)
        for name, array in sorted(inputs.items(), key=lambda item: self.definition.inputs[item[0]].name):
            want = NUMPY_DTYPES.get(self.input_dtypes[name])
            if want is not None and np.dtype(want) != array.dtype:
                raise invalid_argument("Expects arg[", feeds.index(self.definition.inputs[name].name), "] to be ",
                                       dtype_name(self.input_dtypes[name]), " but ", _numpy_dtype_name(array.dtype),
                                       " is provided")
        for name, array in inputs.items():
            dims = self.input_shapes[name]
            if dims is not None and (len(dims) != array.ndim or any(
                    d != -1 and d != s for d, s in zip(dims, array.shape))):
                raise invalid_argument("Input '", name, "' of signature '", self.name, "' has shape ",
                                       _shape_text(array.shape), " but the signature expects ",
                                       _shape_text(dims), " (-1: any size)")

    def rows(self, inputs: Mapping[str, np.ndarray]) -> Optional[int]:
        """The batch size when every input shares dimension 0, else None."""
        sizes = {a.shape[0] for a in inputs.values() if a.ndim >= 1}
        return sizes.pop() if len(sizes) == 1 and all(a.ndim >= 1 for a in inputs.values()) else None


def _numpy_dtype_name(dtype: np.dtype) -> str:
    for enum, np_type in NUMPY_DTYPES.items():
        if np.dtype(np_type) == dtype:
            return dtype_name(enum)
    return dtype.name


def _dims(info: meta_graph_pb2.TensorInfo) -> Optional[Tuple[int, ...]]:
    shape = info.tensor_shape
    return None if shape.unknown_rank else tuple(d.size for d in shape.dim)


def _shape_text(dims: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


class Servable:
    """One loaded version: its MetaGraphDef's signatures and the functions that compute them."""

    def __init__(self, name: str, version: int, path: str, max_batch_size: int,
                 batching: bool, batch_timeout_micros: int, num_batch_threads: int):
        self.name = name
        self.version = version
        self.path = path
        self.max_batch_size = max_batch_size
        self.meta_graph = _serve_meta_graph(path)
        self.loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
        self.signatures: Dict[str, Signature] = {}
        for key, definition in self.meta_graph.signature_def.items():
            function = self.loaded.signatures.get(key) if key in self.loaded.signatures else None
            self.signatures[key] = Signature(key, definition, function)
        for signature in self.signatures.values():
            if signature.function is not None and signature.definition.inputs:
                signature.batcher = Batcher(
                    signature.run, f"{version}-{signature.name}", max_batch_size, batch_timeout_micros,
                    num_batch_threads, merge=batching and signature.batchable)

    def warm_up(self) -> None:
        """Calls each signature once on an empty batch: the first call of a loaded function builds
        its graph, which must not happen on a user's request."""
        for signature in self.signatures.values():
            if signature.function is None or not signature.batchable:
                continue
            empty = {name: np.zeros((0,) + tuple(max(d, 1) for d in signature.input_shapes[name][1:]),
                                    NUMPY_DTYPES.get(signature.input_dtypes[name], np.float32))
                     for name in signature.input_dtypes}
            try:
                signature.run(empty)
            except Exception as e:  # noqa: BLE001 - a warm-up failure is not a load failure
                log.info("warm-up of %s version %d signature %s: %s", self.name, self.version,
                         signature.name, str(e).splitlines()[0] if str(e) else type(e).__name__)

    def signature(self, name: str) -> Signature:
        key = name or DEFAULT_SIGNATURE
        found = self.signatures.get(key)
        if found is None:
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{key}" not found.')
        return found

    def predict(self, signature: Signature, inputs: Mapping[str, np.ndarray],
                output_filter: Sequence[str] = ()):
        """A future of the signature's outputs (name -> array), after checking the request. The
        signature's method_name is not checked: TF Serving checks it only with
        --enable_signature_method_name_check, off by default (predict_util.cc VerifySignature)."""
        signature.check_input_names(inputs)
        seen = set()
        for alias in output_filter:  # PreProcessPrediction: after the inputs' names, before running
            if alias not in signature.definition.outputs:
                raise invalid_argument("output tensor alias not found in signature: ", alias,
                                       " Outputs expected to be in the set {",
                                       ",".join(signature.output_names), "}.")
            if alias in seen:
                raise invalid_argument("duplicate output tensor alias: ", alias)
            seen.add(alias)
        signature.check_inputs(inputs)  # the types and shapes TensorFlow's run would refuse
        if signature.function is None or signature.batcher is None:
            raise invalid_argument("Signature '", signature.name, "' cannot be called (no inputs)")
        rows = signature.rows(inputs)
        if rows is not None and rows > self.max_batch_size:
            raise invalid_argument("Task size ", rows, " is larger than maximum input batch size ",
                                   self.max_batch_size, " (the server's --max_batch_size)")
        return signature.batcher.submit(dict(inputs), alone=rows is None)

    def metadata(self) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """GetModelMetadataImpl: the model spec and a SignatureDefMap of every signature."""
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, definition in self.meta_graph.signature_def.items():
            signature_map.signature_def[key].CopyFrom(definition)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    def close(self) -> None:
        for signature in self.signatures.values():
            if signature.batcher is not None:
                signature.batcher.close()


def _serve_meta_graph(path: str) -> meta_graph_pb2.MetaGraphDef:
    saved_model = saved_model_pb2.SavedModel()
    pb_path = os.path.join(path, SAVED_MODEL_FILE)
    with tf.io.gfile.GFile(pb_path, "rb") as f:
        try:
            saved_model.ParseFromString(f.read())
        except message.DecodeError:  # TensorFlow's loader says the same
            raise ServingError("DATA_LOSS", f"Can't parse {pb_path} as binary proto") from None
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ServingError("NOT_FOUND", f"Could not find meta graph def matching supplied tags: {{ {SERVE_TAG} }}. "
                                    f"To inspect available tag-sets in the SavedModel, please use the "
                                    f"SavedModel CLI: `saved_model_cli`")


def find_versions(base_path: str) -> Dict[int, str]:
    """Complete versions under `base_path`: number -> directory (the base itself as version 1 when
    it is a SavedModel)."""
    try:
        if tf.io.gfile.exists(os.path.join(base_path, SAVED_MODEL_FILE)):
            return {1: base_path}
        names = tf.io.gfile.listdir(base_path)
    except tf.errors.OpError:
        return {}
    versions = {}
    for entry in sorted(names):
        entry = entry.rstrip("/")
        number = version_number(entry)  # TF Serving's rule: other names are ignored
        if (number is not None and number not in versions
                and tf.io.gfile.exists(os.path.join(base_path, entry, SAVED_MODEL_FILE))):
            versions[number] = os.path.join(base_path, entry)
    return versions


def _stamp(path: str) -> Tuple[int, int]:
    try:
        info = tf.io.gfile.stat(os.path.join(path, SAVED_MODEL_FILE))
        return info.length, info.mtime_nsec
    except tf.errors.OpError:
        return (-1, -1)


def _check_version_label(version: Optional[int], label: Optional[str]) -> None:
    """TF Serving's checks of a model spec's version/label pair (no version labels are served)."""
    if version is not None and label:
        raise invalid_argument("Both model version (", version, ") and model version label (",
                               label, ") cannot be supplied.")
    if label:
        raise invalid_argument("Unrecognized servable version label: ", label)


class ModelManager:
    """The versions of one model: which one serves, and every version's state for the status API."""

    def __init__(self, name: str, base_path: str, poll_seconds: float = 1.0, max_batch_size: int = 1000,
                 enable_batching: bool = True, batch_timeout_micros: int = 0, num_batch_threads: int = 2,
                 max_num_load_retries: int = DEFAULT_MAX_NUM_LOAD_RETRIES,
                 load_retry_interval_micros: int = DEFAULT_LOAD_RETRY_INTERVAL_MICROS):
        self.name = name
        self.base_path = base_path
        self.poll_seconds = poll_seconds
        self.max_num_load_retries = max(max_num_load_retries, 0)
        self.load_retry_interval_micros = load_retry_interval_micros
        self._servable_args = dict(max_batch_size=max_batch_size, batching=enable_batching,
                                   batch_timeout_micros=batch_timeout_micros,
                                   num_batch_threads=num_batch_threads)
        self.max_batch_size = max_batch_size
        self._current: Optional[Servable] = None
        self._states: Dict[int, Tuple[int, str, str]] = {}  # version -> (State, error code, message)
        self._failed: Dict[int, Tuple[int, int]] = {}  # version -> saved_model.pb stamp when it failed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._warned_empty = True  # at start-up the server says it, with what to do

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.poll_once()
        if self.poll_seconds > 0:  # 0: polled exactly once, at start-up (TF Serving's meaning)
            self._thread = threading.Thread(target=self._poll_loop, name="version-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        current = self._current
        if current is not None:
            current.close()
            for signature in current.signatures.values():
                batcher = signature.batcher
                if batcher is not None and batcher.requests:
                    log.info("signature %s of version %d: %d requests in %d TensorFlow calls (%.1f per call)",
                             signature.name, current.version, batcher.requests, batcher.calls,
                             batcher.requests / max(batcher.calls, 1))

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - polling goes on (a storage hiccup, say)
                log.exception("polling %s failed", self.base_path)

    def poll_once(self) -> None:
        """Loads the newest complete version if it is not the one served (and has not failed)."""
        versions = find_versions(self.base_path)
        for gone in set(self._failed) - set(versions):  # tried again if it comes back
            del self._failed[gone]
        if not versions:
            if not self._warned_empty:
                log.warning("No versions of servable %s found under base path %s", self.name, self.base_path)
                self._warned_empty = True
            return
        self._warned_empty = False
        newest = max(versions)
        current = self._current
        if current is not None and current.version == newest:
            return
        if self._failed.get(newest) == _stamp(versions[newest]):
            return
        self._load(newest, versions[newest])

    def _wait_for_retry(self, version: int) -> bool:
        """Waits load_retry_interval_micros (negative: no wait) before a retry; False when the
        server stops or `version` is no longer the newest complete version meanwhile (looked at
        every poll interval)."""
        deadline = time.monotonic() + max(self.load_retry_interval_micros, 0) / 1e6
        while True:
            if not self._still_newest(version):
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            if self._stop.wait(min(left, self.poll_seconds) if self.poll_seconds > 0 else left):
                return False

    def _still_newest(self, version: int) -> bool:
        versions = find_versions(self.base_path)
        return bool(versions) and max(versions) == version

    def _set_state(self, version: int, state: int, code: str = "OK", message: str = "") -> None:
        with self._lock:
            self._states[version] = (state, code, message)

    def _load(self, version: int, path: str) -> None:
        """LoaderHarness::Load under TF Serving's Retry: up to max_num_load_retries more attempts,
        load_retry_interval_micros apart, while the version is still the newest."""
        self._set_state(version, State.START)
        self._set_state(version, State.LOADING)
        log.info("Loading servable version {name: %s version: %d} from %s", self.name, version, path)
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                servable = Servable(self.name, version, path, **self._servable_args)
                servable.warm_up()
                break
            except Exception as e:  # noqa: BLE001 - any failure leaves the current version serving
                error = status.from_exception(e)
                if error.code == "INTERNAL" and not isinstance(e, ServingError):
                    error = ServingError("UNKNOWN", error.message)
                message = error.message.strip().splitlines()[0] if error.message.strip() else error.code
            current = self._current
            serving = f"version {current.version} keeps serving" if current else "no version is serving"
            if attempt < self.max_num_load_retries:
                log.error("Loading servable version {name: %s version: %d} failed: %s: %s; %s; retry %d of %d in "
                          "%g s", self.name, version, error.code, message, serving, attempt + 1,
                          self.max_num_load_retries, max(self.load_retry_interval_micros, 0) / 1e6)
                if self._wait_for_retry(version):
                    attempt += 1
                    log.info("Retrying of Loading servable version {name: %s version: %d} retry: %d", self.name,
                             version, attempt)
                    continue
                why = ("retries stopped: the server is stopping" if self._stop.is_set() else
                       "retries stopped: it is no longer the newest version")
            else:
                why = (f"exhausted max_num_retries: {self.max_num_load_retries}" if self.max_num_load_retries
                       else "not retried (--max_num_load_retries 0)")
            self._failed[version] = _stamp(path)  # as it is now: tried again only if it changes
            self._set_state(version, State.END, error.code, message)
            log.error("Loading servable version {name: %s version: %d} failed: %s: %s; %s; %s", self.name,
                      version, error.code, message, serving, why)
            return
        self._failed.pop(version, None)
        self._set_state(version, State.AVAILABLE)
        old, self._current = self._current, servable  # the switch: one assignment
        log.info("Successfully loaded servable version {name: %s version: %d} in %.1f s%s", self.name, version,
                 time.monotonic() - start, f" ({attempt} {'retry' if attempt == 1 else 'retries'})" if attempt else "")
        if old is not None:
            self._set_state(old.version, State.UNLOADING)
            old.close()
            self._set_state(old.version, State.END)
            log.info("Unloaded servable version {name: %s version: %d}", self.name, old.version)

    # --- requests -------------------------------------------------------------------------------
    @property
    def current(self) -> Optional[Servable]:
        return self._current

    def servable(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> Servable:
        """ServerCore::GetServableHandle for a model spec (name, optional version or label)."""
        if not name:
            raise invalid_argument("ModelSpec has no name specified.")
        _check_version_label(version, label)
        current = self._current
        if name != self.name or current is None or (version is not None and version != current.version):
            request = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise not_found("Servable not found for request: ", request)
        return current

    def status(self, name: str, version: Optional[int] = None) -> get_model_status_pb2.GetModelStatusResponse:
        """GetModelStatusImpl::GetModelStatusWithModelSpec: one version's state, or every version's,
        newest first (ServableStateMonitor's VersionMap is ordered by std::greater). TF Serving reads
        only the spec's name and version: a version label is ignored (every version is answered),
        and an empty name is a model with no versions (NOT_FOUND; the REST handler refuses an
        empty name itself, before this)."""
        with self._lock:
            states = dict(self._states) if name == self.name else {}
        if version is not None:
            if version not in states:
                raise not_found("Could not find version ", version, " of model ", name)
            states = {version: states[version]}
        elif not states:
            raise not_found("Could not find any versions of model ", name)
        response = get_model_status_pb2.GetModelStatusResponse()
        for v in sorted(states, reverse=True):
            state, code, message = states[v]
            entry = response.model_version_status.add(version=v, state=state)
            entry.status.SetInParent()
            entry.status.error_code = status.CODES[code]
            entry.status.error_message = message
        return response


def status_json(response: get_model_status_pb2.GetModelStatusResponse) -> str:
    """ToJsonString(GetModelStatusResponse): protobuf's JSON with whitespace and default values."""
    return json_format.MessageToJson(response, always_print_fields_with_no_presence=True, indent=1)


def metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> str:
    """ToJsonString(GetModelMetadataResponse): model_spec and the unpacked SignatureDefMap, printed
    separately with proto field names and joined as TF Serving joins them."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
    options = dict(always_print_fields_with_no_presence=True, preserving_proto_field_name=True, indent=1)
    spec = json_format.MessageToJson(response.model_spec, **options)
    signatures = json_format.MessageToJson(signature_map, **options)
    return ("{\n" + '"model_spec":' + spec + ",\n" + '"metadata": {' + '"signature_def": ' + signatures
            + "}\n" + "}\n")


def model_spec(name: str, version: int, signature_name: str = "") -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name)
    spec.version.value = version
    return spec


def unsupported_config(model) -> Optional[str]:
    """What a ModelConfig (TF Serving's model_server_config.proto) asks that this server does not do,
    None when nothing: it serves TensorFlow SavedModels, the latest version only, without labels.
    Said at start-up (--model_config_file) and on a reload (HandleReloadConfigRequest) alike."""
    if model.model_platform not in ("", "tensorflow"):
        return f"model_platform {model.model_platform!r}: this server serves tensorflow only"
    policy = model.model_version_policy
    if policy.WhichOneof("policy_choice") not in (None, "latest") or policy.latest.num_versions > 1:
        return "this server serves the latest version only (model_version_policy)"
    if model.version_labels:
        return "version_labels are not supported by this server"
    return None
