"""Request logging as TF Serving defines it: a sample of requests and responses as `PredictionLog`
records, configured by a model's `logging_config`.

TF Serving (2.19) defines the configuration (`ModelConfig.logging_config`: a `LoggingConfig` with
`log_collector_config {type, filename_prefix}` and `sampling_config {sampling_rate}`) and the
record (`tensorflow_serving.apis.prediction_log_pb2.PredictionLog`), but its open-source server
registers no log collector: a model config with `logging_config` fails its start-up. This
server implements the interfaces as they are documented (core/request_logger.cc,
core/log_collector.h):

- sampling: per model, uniform: a request is logged when `uniform(0, 1) < sampling_rate` (1.0
  logs every request, 0 none); only a request that got a response is logged (the logger's `Log`
  takes the request and its response);
- the record: `PredictionLog` with `log_metadata` (`model_spec`: name, the version that answered
  and the signature it ran; `sampling_config` copied from the config; `saved_model_tags`
  ["serve"]; `timestamp_secs`) and `predict_log` {request, response}; `classify_log`,
  `regress_log` and `multi_inference_log` for those requests (this server answers them with
  TF Serving's errors for the pushed models, so none is ever logged from them). A REST request
  is logged as the `PredictRequest` TF Serving builds from its JSON (the URL's model spec, the
  body's signature name and inputs);
- one collector type, `tfrecord` (an unknown type is refused with TF Serving's message, "Cannot
  find LogCollector::Factory for type: X"): each record one serialized `PredictionLog` in a
  TFRecord file, the format of TF Serving's warm-up file and of TFX's BulkInferrer, flushed as
  soon as the records waiting are written (each record when requests are few, a batch under
  load: "so that the data can survive an application crash");
- files (our choice: TF Serving defines none): `<filename_prefix>-<id>-<seq>.tfrecord` where
  `<id>` is the server's start time (UTC, `YYYYMMDDTHHMMSSZ`) and process id, as TF Serving's
  collector interface suggests for replicated servers, and `<seq>` counts from 00000; a file is
  closed and the next opened when it reaches `max_file_bytes` or is `max_file_seconds` old
  (checked when a record is written);
- latency, which `PredictionLog` has no field for: beside each log file a text file
  `<same name>.latency.csv` with one line per record, `record,timestamp_us,latency_us,api`
  (`record` the record's index in the log file; `latency_us` the server's time from the
  handler's start, body received, to the response ready; `api` rest or grpc), so the records
  stay pure `PredictionLog`s for every tool that reads them.

Records are written by one thread of their own, fed by a bounded queue: a request never waits
for the disk, and a full queue or a failing disk drops records (counted, and said in the log)
rather than failing requests. A config reload (gRPC `HandleReloadConfigRequest`) keeps the logger
when its `logging_config` is unchanged and replaces it otherwise, as ServerRequestLogger does.
"""

from __future__ import annotations

import datetime
import logging
import os
import queue
import random
import re
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, inference_pb2, model_pb2, predict_pb2,
                                     prediction_log_pb2, regression_pb2)
from tensorflow_serving.config import logging_config_pb2

from serving.status import ServingError

log = logging.getLogger(__name__)

COLLECTOR_TYPE = "tfrecord"
LOG_SUFFIX = ".tfrecord"
LATENCY_SUFFIX = ".latency.csv"
LATENCY_HEADER = "record,timestamp_us,latency_us,api\n"
SERVE_TAG = "serve"
DEFAULT_MAX_FILE_BYTES = 64 * 2**20
DEFAULT_MAX_FILE_SECONDS = 3600.0
QUEUE_SIZE = 10000  # records waiting for the writer thread; more are dropped (counted)
_RECORD_OVERHEAD = 16  # a TFRecord's length, its CRC and the data's CRC

_LOG_TYPES = {  # request type -> (PredictionLog field, the log message)
    predict_pb2.PredictRequest: ("predict_log", prediction_log_pb2.PredictLog),
    classification_pb2.ClassificationRequest: ("classify_log", prediction_log_pb2.ClassifyLog),
    regression_pb2.RegressionRequest: ("regress_log", prediction_log_pb2.RegressLog),
    inference_pb2.MultiInferenceRequest: ("multi_inference_log", prediction_log_pb2.MultiInferenceLog),
}


def logging_config(filename_prefix: str, sampling_rate: float) -> logging_config_pb2.LoggingConfig:
    """The `logging_config` of a model whose requests go to `filename_prefix`-... files."""
    config = logging_config_pb2.LoggingConfig()
    config.log_collector_config.type = COLLECTOR_TYPE
    config.log_collector_config.filename_prefix = filename_prefix
    config.sampling_config.sampling_rate = sampling_rate
    return config


def check_config(config: logging_config_pb2.LoggingConfig) -> None:
    """ServingError (TF Serving's code and, where it has one, its message) for a logging_config
    this server cannot honour."""
    kind = config.log_collector_config.type
    if kind != COLLECTOR_TYPE:  # LogCollector::Create
        raise ServingError("NOT_FOUND", f"Cannot find LogCollector::Factory for type: {kind} "
                                        f"(this server has one: {COLLECTOR_TYPE})")
    if not config.log_collector_config.filename_prefix:
        raise ServingError("INVALID_ARGUMENT", "logging_config: log_collector_config.filename_prefix is empty")
    rate = config.sampling_config.sampling_rate
    if not 0.0 <= rate <= 1.0:
        raise ServingError("INVALID_ARGUMENT", f"logging_config: sampling_rate must be in [0, 1], got {rate}")
    if config.HasField("custom_logging_config"):
        raise ServingError("INVALID_ARGUMENT", "logging_config: custom_logging_config is not supported by the "
                                               f"{COLLECTOR_TYPE} collector")


def prediction_log(request, response, model_name: str, version: int, signature_name: str,
                   sampling_config: logging_config_pb2.SamplingConfig,
                   timestamp: float) -> prediction_log_pb2.PredictionLog:
    """The PredictionLog of one request and its response (its type picks the log field)."""
    field, log_type = _LOG_TYPES[type(request)]
    record = prediction_log_pb2.PredictionLog()
    metadata = record.log_metadata
    metadata.model_spec.name = model_name
    metadata.model_spec.version.value = version
    metadata.model_spec.signature_name = signature_name
    metadata.sampling_config.CopyFrom(sampling_config)
    metadata.saved_model_tags.append(SERVE_TAG)
    metadata.timestamp_secs = int(timestamp)
    getattr(record, field).CopyFrom(log_type(request=request, response=response))
    return record


def rest_predict_messages(name: str, version: Optional[int], label: Optional[str], signature_name: str,
                          resolved_version: int, resolved_signature: str, inputs: Mapping[str, np.ndarray],
                          outputs: Mapping[str, np.ndarray]
                          ) -> Tuple[predict_pb2.PredictRequest, predict_pb2.PredictResponse]:
    """The PredictRequest TF Serving builds from a REST call (the URL's model spec, the body's
    signature name and inputs) and the PredictResponse it answers before writing it as JSON."""
    from serving.grpc_service import as_proto_field  # the tensors as TF Serving's Predict writes them

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    elif label:
        request.model_spec.version_label = label
    request.model_spec.signature_name = signature_name
    for key, array in inputs.items():
        request.inputs[key].CopyFrom(as_proto_field(np.asarray(array)))
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(model_pb2.ModelSpec(name=name, signature_name=resolved_signature))
    response.model_spec.version.value = resolved_version
    for key in sorted(outputs):
        response.outputs[key].CopyFrom(as_proto_field(np.asarray(outputs[key])))
    return request, response


class Rotation(NamedTuple):
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_file_seconds: float = DEFAULT_MAX_FILE_SECONDS


DEFAULT_ROTATION = Rotation()


def collector_id(now: Optional[float] = None, pid: Optional[int] = None) -> str:
    """`<UTC start time>-<process id>`: what tells apart the files of two servers (or two starts)."""
    stamp = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.timezone.utc)
    return f"{stamp:%Y%m%dT%H%M%SZ}-{os.getpid() if pid is None else pid}"


class TFRecordCollector:
    """The `tfrecord` LogCollector: serialized PredictionLogs into rotated TFRecord files and their
    latency lines beside them (module docstring). Used by one thread (RequestLogger's writer)."""

    def __init__(self, filename_prefix: str, rotation: Rotation = DEFAULT_ROTATION, id_: Optional[str] = None,
                 clock: Callable[[], float] = time.time):
        self.prefix = filename_prefix
        self.rotation = rotation
        self.id = id_ or collector_id()
        self.clock = clock
        self.sequence = -1
        self.files: List[str] = []
        self._writer = None
        self._latency = None
        self._bytes = 0
        self._records = 0
        self._opened = 0.0
        directory = os.path.dirname(filename_prefix)
        if directory:
            tf.io.gfile.makedirs(directory)

    def _rotate(self) -> None:
        self.close()
        self.sequence += 1
        base = f"{self.prefix}-{self.id}-{self.sequence:05d}"
        self._writer = tf.io.TFRecordWriter(base + LOG_SUFFIX)
        self._latency = tf.io.gfile.GFile(base + LATENCY_SUFFIX, "w")
        self._latency.write(LATENCY_HEADER)
        self._latency.flush()
        self._bytes, self._records, self._opened = 0, 0, self.clock()
        self.files.append(base + LOG_SUFFIX)

    def collect(self, record: bytes, timestamp: float, latency_seconds: float, api: str) -> None:
        """Writes one serialized PredictionLog and its latency line, rotating first if due (the
        file being closed is flushed): when the record would take the file past its size (a record
        larger than that gets a file of its own) or the file is old enough; `flush` makes them
        reach the file."""
        size = len(record) + _RECORD_OVERHEAD
        if (self._writer is None or (self._records and self._bytes + size > self.rotation.max_file_bytes)
                or self.clock() - self._opened >= self.rotation.max_file_seconds):
            self._rotate()
        self._writer.write(record)
        self._latency.write(f"{self._records},{int(timestamp * 1e6)},{int(round(latency_seconds * 1e6))},{api}\n")
        self._bytes += size
        self._records += 1

    def flush(self) -> None:
        """What is written reaches the files (LogCollector::Flush: it survives the process)."""
        if self._writer is not None:
            self._writer.flush()
            self._latency.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._latency.close()
            self._writer = self._latency = None


class RequestLogger:
    """One model's request logger: the sampling decision on the request's path, the record built
    and written by a thread of its own (module docstring)."""

    def __init__(self, model_name: str, config: logging_config_pb2.LoggingConfig, rotation: Rotation = DEFAULT_ROTATION,
                 rng: Optional[random.Random] = None, collector: Optional[TFRecordCollector] = None):
        check_config(config)
        self.model_name = model_name
        self.config = config
        self.rate = config.sampling_config.sampling_rate
        self.collector = collector or TFRecordCollector(config.log_collector_config.filename_prefix, rotation)
        self._rng = rng or random.Random()
        self._queue: "queue.Queue[Optional[tuple]]" = queue.Queue(QUEUE_SIZE)
        self.counts = {"written": 0, "dropped": 0, "failed": 0}
        self._thread = threading.Thread(target=self._write_loop, name=f"request-log-{model_name}", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        """UniformSampler::Sample: True for this request with probability `sampling_rate`."""
        return self.rate > 0 and self._rng.random() < self.rate

    def log(self, make_messages: Callable[[], Tuple[Any, Any]], version: int, signature_name: str,
            latency_seconds: float, api: str) -> None:
        """Queues a sampled request's record; `make_messages()` gives (request, response) protos
        on the writer's thread (a REST request's arrays are converted there, not on the request's
        path)."""
        try:
            self._queue.put_nowait((make_messages, version, signature_name, latency_seconds, api, time.time()))
        except queue.Full:
            self._count("dropped", "request log queue full (%d records): records are dropped", QUEUE_SIZE)

    def _count(self, what: str, message: str, *args) -> None:
        self.counts[what] += 1
        if self.counts[what] in (1, 10, 100) or self.counts[what] % 1000 == 0:
            log.warning(message + " (%s so far: %d)", *args, what, self.counts[what])

    def _write_loop(self) -> None:
        """Writes what is queued, then flushes: once a record when requests are few, once a batch
        under load (one write call for many records)."""
        while True:
            item = self._queue.get()
            while item is not None:
                self._write(*item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            try:
                self.collector.flush()
            except Exception as e:  # noqa: BLE001 - a logging failure never fails the server
                self._count("failed", "request log: the log files could not be flushed (%s)", e)
            if item is None:
                break

    def _write(self, make_messages, version, signature_name, latency, api, timestamp) -> None:
        try:
            request, response = make_messages()
            record = prediction_log(request, response, self.model_name, version, signature_name,
                                    self.config.sampling_config, timestamp)
            self.collector.collect(record.SerializeToString(), timestamp, latency, api)
            self.counts["written"] += 1
        except Exception as e:  # noqa: BLE001 - a logging failure never fails the server
            self._count("failed", "request log: a record could not be written (%s)", e)

    def close(self) -> None:
        """Writes what is queued, closes the files and says what was written."""
        self._queue.put(None)
        self._thread.join()
        self.collector.close()
        log.info("request log of %s: %d records in %d files (%s-%s-*%s)%s", self.model_name,
                 self.counts["written"], len(self.collector.files), self.collector.prefix, self.collector.id,
                 LOG_SUFFIX, "".join(f", {n} {what}" for what, n in self.counts.items() if what != "written" and n))


class RequestLog:
    """ServerRequestLogger for the one model this server serves: its logger while its
    `logging_config` is set, kept across a config reload that does not change it."""

    def __init__(self, model_name: str, rotation: Rotation = DEFAULT_ROTATION,
                 config: Optional[logging_config_pb2.LoggingConfig] = None):
        self.model_name = model_name
        self.rotation = rotation
        self.logger: Optional[RequestLogger] = None
        self._lock = threading.Lock()
        self.update(config)

    def update(self, config: Optional[logging_config_pb2.LoggingConfig]) -> None:
        """Starts, replaces or stops the logger for a (new) config; None or a rate of 0 stops it.
        An unchanged config keeps the logger; a config this server cannot honour raises
        ServingError and changes nothing."""
        if config is not None:
            check_config(config)
        with self._lock:
            old = self.logger
            if old is not None and config is not None and _same(old.config, config):
                return
            self.logger = (RequestLogger(self.model_name, config, self.rotation)
                           if config is not None and config.sampling_config.sampling_rate > 0 else None)
        if old is not None:
            old.close()
        if self.logger is not None:
            log.info("logging %g of %s's requests to %s-%s-*%s", self.logger.rate, self.model_name,
                     self.logger.collector.prefix, self.logger.collector.id, LOG_SUFFIX)

    def sample(self) -> Optional[RequestLogger]:
        """The logger if this request is to be logged, else None."""
        logger = self.logger
        return logger if logger is not None and logger.sampled() else None

    def close(self) -> None:
        self.update(None)


def _same(a: logging_config_pb2.LoggingConfig, b: logging_config_pb2.LoggingConfig) -> bool:
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


# --- reading the logs (serving/monitor.py) -----------------------------------------------------
_FILE_NAME = re.compile(r"-(\d{8}T\d{6}Z)-(\d+)-(\d{5})" + re.escape(LOG_SUFFIX) + "$")


def log_files(path: str) -> List[str]:
    """The log files of a prefix (`<prefix>-*.tfrecord`) or of a directory (every `*.tfrecord`
    in it named as this server names them), oldest first (by start time, process, sequence)."""
    if tf.io.gfile.isdir(path):
        found = tf.io.gfile.glob(os.path.join(path, "*" + LOG_SUFFIX))
    else:
        found = tf.io.gfile.glob(path + "-*" + LOG_SUFFIX)
    named = [(m.groups(), f) for f in found if (m := _FILE_NAME.search(f))]
    return [f for key, f in sorted(named, key=lambda item: (item[0][0], int(item[0][1]), item[0][2]))]


class LoggedRequest(NamedTuple):
    log: prediction_log_pb2.PredictionLog
    latency_us: Optional[int]  # None when its latency line is missing
    timestamp_us: Optional[int]
    api: Optional[str]
    file: str


def read_latencies(log_file: str) -> Dict[int, Tuple[int, int, str]]:
    """record index -> (timestamp_us, latency_us, api) from a log file's latency file."""
    path = log_file[:-len(LOG_SUFFIX)] + LATENCY_SUFFIX
    found: Dict[int, Tuple[int, int, str]] = {}
    if not tf.io.gfile.exists(path):
        return found
    with tf.io.gfile.GFile(path) as f:
        for line in f.read().splitlines()[1:]:
            parts = line.split(",")
            if len(parts) == 4 and parts[0].isdigit():  # a line cut short by a crash is skipped
                found[int(parts[0])] = (int(parts[1]), int(parts[2]), parts[3])
    return found


def read_logs(files: List[str], problems: Optional[List[str]] = None) -> Iterator[LoggedRequest]:
    """Every record of `files` with its latency line. A last record cut short (a file still being
    written, or a crash) ends that file's records without an error. A damaged record (its data's
    checksum fails with the whole record there) is skipped and named as damage, and the records
    after it are read (found by exploratory testing: one flipped byte left out the rest of a 64 MB
    file); a damaged length (its own checksum fails) leaves no way to the next record, and ends
    the file's records. Each such line goes to `problems` when given, else to the log. A file's
    records are read before its latency file, so that a file the server is writing has a latency
    line for each record read."""
    for path in files:
        records, offset, found = [], 0, []
        iterator = iter(tf.data.TFRecordDataset(path))
        while True:
            try:
                raw = next(iterator).numpy()
            except StopIteration:
                break
            except tf.errors.DataLossError:  # the rest of the file, a record at a time
                more, found = _read_past_damage(path, len(records), offset)
                records += more
                break
            records.append((len(records), raw))
            offset += _RECORD_FRAMING + len(raw)
        for problem in found:
            if problems is not None:  # the caller says it (make monitor: console and report)
                problems.append(problem)
            else:
                log.warning("%s", problem)
        latencies = read_latencies(path)
        for index, raw in records:
            timestamp, latency, api = latencies.get(index, (None, None, None))
            yield LoggedRequest(prediction_log_pb2.PredictionLog.FromString(raw), latency, timestamp, api, path)


def _read_past_damage(path: str, index: int, offset: int) -> Tuple[List[Tuple[int, bytes]], List[str]]:
    """The records of `path` from record `index` at byte `offset` on, as (index, bytes), skipping
    each one whose data's checksum fails; and the lines that say what was skipped and where the
    records stop: at a record cut short (its bytes are not all there yet: the file being written),
    or at a damaged length (its own checksum fails; a damaged length would otherwise read as a
    record too long for the file, like one cut short)."""
    import struct

    with tf.io.gfile.GFile(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    size = offset + len(data)
    records, problems, skipped, position, start = [], [], [], 0, index
    while position < len(data):
        header = data[position:position + 12]
        if len(header) == 12 and struct.unpack("<I", header[8:])[0] != _masked_crc32c(header[:8]):
            at = offset + position
            problems.append(f"{path}: record {index + 1:,} is damaged (a checksum of its length fails at byte "
                            f"{at:,} of {size:,}): read {start + len(records):,} records; the {size - at:,} bytes "
                            "from there on are left out")
            break
        end = position + _RECORD_FRAMING + (struct.unpack("<Q", header[:8])[0] if len(header) == 12 else 0)
        if len(header) < 12 or end > len(data):
            problems.append(f"{path}: its last record is incomplete (being written?): read "
                            f"{start + len(records):,} records")
            break
        raw = data[position + 12:end - 4]
        if struct.unpack("<I", data[end - 4:end])[0] == _masked_crc32c(raw):
            records.append((index, raw))
        else:
            skipped.append((index, offset + position))
        index, position = index + 1, end
    if skipped:
        where = ", ".join(f"{i + 1:,} (byte {at:,})" for i, at in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        problems.insert(0, f"{path}: {len(skipped):,} damaged {'record' if len(skipped) == 1 else 'records'} "
                           f"skipped (a checksum of the data fails): record {where}; the others are read")
    return records, problems


_RECORD_FRAMING = 16  # a TFRecord: length (8 bytes), its CRC (4), the data, the data's CRC (4)


def _masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum of `data`: CRC-32C, rotated and offset (tensorflow/core/lib/hash/crc32c.h)."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
