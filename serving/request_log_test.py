"""Request logs as TF Serving defines them: PredictionLog records with their metadata, the
logging_config checks, uniform sampling, files named and rotated as documented, read back in
order with their latencies (also when the last record is cut short)."""

import os
import random

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, inference_pb2, predict_pb2, prediction_log_pb2,
                                     regression_pb2)

from serving import request_log
from serving.status import ServingError


def _config(prefix, rate=1.0):
    return request_log.logging_config(str(prefix), rate)


def _predict_pair(item=7):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "recommender"
    request.model_spec.signature_name = "call_item_item"
    request.inputs["item"].CopyFrom(tf.make_tensor_proto(np.array([item], np.int64)))
    response = predict_pb2.PredictResponse()
    response.outputs["known_item"].CopyFrom(tf.make_tensor_proto(np.array([True])))
    return request, response


def test_a_record_holds_the_request_response_and_metadata():
    request, response = _predict_pair()
    sampling = _config("x", 0.25).sampling_config
    record = request_log.prediction_log(request, response, "recommender", 17, "call_item_item", sampling, 1234.9)
    assert record.WhichOneof("log_type") == "predict_log"
    assert record.predict_log.request == request and record.predict_log.response == response
    meta = record.log_metadata
    assert (meta.model_spec.name, meta.model_spec.version.value, meta.model_spec.signature_name) == (
        "recommender", 17, "call_item_item")
    assert meta.sampling_config.sampling_rate == 0.25 and list(meta.saved_model_tags) == ["serve"]
    assert meta.timestamp_secs == 1234


@pytest.mark.parametrize("request_type, response_type, field", [
    (classification_pb2.ClassificationRequest, classification_pb2.ClassificationResponse, "classify_log"),
    (regression_pb2.RegressionRequest, regression_pb2.RegressionResponse, "regress_log"),
    (inference_pb2.MultiInferenceRequest, inference_pb2.MultiInferenceResponse, "multi_inference_log"),
])
def test_classify_regress_and_multi_inference_have_their_own_log_type(request_type, response_type, field):
    record = request_log.prediction_log(request_type(), response_type(), "m", 1, "s",
                                        _config("x").sampling_config, 0)
    assert record.WhichOneof("log_type") == field


def test_rest_requests_are_logged_as_the_predict_request_tf_serving_builds():
    request, response = request_log.rest_predict_messages(
        "recommender", None, None, "", 5, "serving_default", {"user_id": np.array([b"u1", b"u2"], object)},
        {"products": np.array([[1, 2], [3, 4]], np.int64), "known_user": np.array([True, False])})
    assert request.model_spec.name == "recommender" and not request.model_spec.HasField("version")
    assert tf.make_ndarray(request.inputs["user_id"]).tolist() == [b"u1", b"u2"]
    assert response.model_spec.version.value == 5 and response.model_spec.signature_name == "serving_default"
    assert tf.make_ndarray(response.outputs["products"]).tolist() == [[1, 2], [3, 4]]
    assert tf.make_ndarray(response.outputs["known_user"]).tolist() == [True, False]


def test_logging_configs_this_server_cannot_honour_are_refused(tmp_path):
    config = _config(tmp_path / "log")
    config.log_collector_config.type = "bigquery"
    with pytest.raises(ServingError, match="Cannot find LogCollector::Factory for type: bigquery") as e:
        request_log.check_config(config)
    assert e.value.code == "NOT_FOUND"
    with pytest.raises(ServingError, match="sampling_rate must be in"):
        request_log.check_config(_config(tmp_path / "log", 1.5))
    with pytest.raises(ServingError, match="filename_prefix is empty"):
        request_log.check_config(_config(""))
    request_log.check_config(_config(tmp_path / "log", 0.0))


def test_sampling_is_uniform_at_the_configured_rate(tmp_path):
    logger = request_log.RequestLogger("m", _config(tmp_path / "a", 0.3), rng=random.Random(0))
    try:
        share = np.mean([logger.sampled() for _ in range(20000)])
        assert share == pytest.approx(0.3, abs=0.02)
    finally:
        logger.close()
    every = request_log.RequestLogger("m", _config(tmp_path / "b", 1.0))
    try:
        assert all(every.sampled() for _ in range(1000))
    finally:
        every.close()


def test_a_rate_of_zero_logs_nothing_and_writes_no_file(tmp_path):
    logs = request_log.RequestLog("m", config=_config(tmp_path / "logs" / "m", 0.0))
    assert logs.logger is None and all(logs.sample() is None for _ in range(100))
    logs.close()
    assert not (tmp_path / "logs").exists() or os.listdir(tmp_path / "logs") == []


def _write(logger, n, first_item=0):
    for i in range(n):
        logger.log(lambda i=i: _predict_pair(first_item + i), 3, "call_item_item", 0.001 * (i + 1), "grpc")


def test_records_are_written_in_order_with_their_latency_and_read_back(tmp_path):
    logger = request_log.RequestLogger("m", _config(tmp_path / "req"))
    _write(logger, 25)
    logger.close()
    [log_file] = request_log.log_files(str(tmp_path / "req"))
    assert os.path.basename(log_file).startswith(f"req-{logger.collector.id}-00000")
    assert logger.counts == {"written": 25, "dropped": 0, "failed": 0}
    read = list(request_log.read_logs([log_file]))
    items = [tf.make_ndarray(r.log.predict_log.request.inputs["item"])[0] for r in read]
    assert items == list(range(25))
    assert [r.latency_us for r in read] == [1000 * (i + 1) for i in range(25)]
    assert {r.api for r in read} == {"grpc"} and all(r.timestamp_us > 0 for r in read)
    # the same files from their directory
    assert request_log.log_files(str(tmp_path)) == [log_file]


def test_files_rotate_by_size_and_by_age(tmp_path):
    one = len(request_log.prediction_log(*_predict_pair(), "m", 3, "call_item_item",
                                         _config("x").sampling_config, 0).SerializeToString()) + 16
    # records differ by a few bytes (their timestamps): room for 3 and a half
    logger = request_log.RequestLogger("m", _config(tmp_path / "size"),
                                       rotation=request_log.Rotation(3 * one + one // 2, 1e9))
    _write(logger, 10)
    logger.close()
    files = request_log.log_files(str(tmp_path / "size"))
    assert [f[-len("00000.tfrecord"):] for f in files] == ["00000.tfrecord", "00001.tfrecord", "00002.tfrecord",
                                                           "00003.tfrecord"]  # 3 + 3 + 3 + 1
    read = list(request_log.read_logs(files))
    assert [tf.make_ndarray(r.log.predict_log.request.inputs["item"])[0] for r in read] == list(range(10))
    assert [r.latency_us for r in read] == [1000 * (i + 1) for i in range(10)]  # each file's own lines
    # no file grows past the size (found by exploratory testing: the size was checked after a
    # write, so one large request took a file past --request_log_max_file_mb)
    logger = request_log.RequestLogger("m", _config(tmp_path / "tight"),
                                       rotation=request_log.Rotation(2 * one + one // 2, 1e9))
    _write(logger, 6)
    logger.close()
    files = request_log.log_files(str(tmp_path / "tight"))
    assert len(files) == 3 and all(os.path.getsize(f) <= 2 * one + one // 2 for f in files)  # 2 + 2 + 2

    now = [0.0]
    collector = request_log.TFRecordCollector(str(tmp_path / "age"), request_log.Rotation(1 << 30, 60.0),
                                              clock=lambda: now[0])
    for t in (0, 30, 59, 60, 61, 200):
        now[0] = t
        collector.collect(b"record", t, 0.001, "rest")
    collector.close()
    assert len(collector.files) == 3  # opened at 0, at 60, at 200


def test_a_last_record_cut_short_ends_the_file_without_an_error(tmp_path):
    logger = request_log.RequestLogger("m", _config(tmp_path / "cut"))
    _write(logger, 4)
    logger.close()
    [log_file] = request_log.log_files(str(tmp_path / "cut"))
    with open(log_file, "rb") as f:
        data = f.read()
    with open(log_file, "wb") as f:
        f.write(data[:-5])  # a crash in the middle of the fourth record
    problems = []
    assert len(list(request_log.read_logs([log_file], problems))) == 3
    assert problems == [f"{log_file}: its last record is incomplete (being written?): read 3 records"]


def test_a_damaged_record_is_skipped_and_named_and_the_rest_of_the_file_read(tmp_path):
    """Found by exploratory testing: ten bytes zeroed in the middle of a log read as "its last
    record is incomplete (being written?)"; then, named as damage, it still left out every record
    after it (with 64 MB files, up to an hour of requests for one flipped byte)."""
    logger = request_log.RequestLogger("m", _config(tmp_path / "bad"))
    _write(logger, 10)
    logger.close()
    [log_file] = request_log.log_files(str(tmp_path / "bad"))
    whole = list(request_log.read_logs([log_file]))
    fifth = sum(16 + r.log.ByteSize() for r in whole[:4])
    data = bytearray(open(log_file, "rb").read())
    data[fifth + 12:fifth + 22] = bytes(10)  # inside the fifth record's data: its length is intact
    open(log_file, "wb").write(bytes(data))
    problems = []
    read = list(request_log.read_logs([log_file], problems))
    assert [r.latency_us for r in read] == [r.latency_us for i, r in enumerate(whole) if i != 4]  # lines kept in step
    assert problems == [f"{log_file}: 1 damaged record skipped (a checksum of the data fails): record 5 "
                        f"(byte {fifth:,}); the others are read"]


def test_a_damaged_length_is_named_as_damage_not_as_a_record_too_long_for_the_file(tmp_path):
    """A damaged length header reads as a record longer than the file, like one being written:
    the header's own checksum tells them apart."""
    logger = request_log.RequestLogger("m", _config(tmp_path / "bad"))
    _write(logger, 5)
    logger.close()
    [log_file] = request_log.log_files(str(tmp_path / "bad"))
    data = bytearray(open(log_file, "rb").read())
    read = list(request_log.read_logs([log_file]))
    third = sum(16 + r.log.ByteSize() for r in read[:2])
    data[third + 5] = 0x7F  # the third record's length, now far beyond the file's end
    open(log_file, "wb").write(bytes(data))
    problems = []
    assert len(list(request_log.read_logs([log_file], problems))) == 2
    assert problems == [f"{log_file}: record 3 is damaged (a checksum of its length fails at byte {third:,} of "
                        f"{len(data):,}): read 2 records; the {len(data) - third:,} bytes from there on are left out"]


def test_a_reload_keeps_an_unchanged_logger_and_replaces_a_changed_one(tmp_path):
    logs = request_log.RequestLog("m", config=_config(tmp_path / "r", 1.0))
    first = logs.logger
    logs.update(_config(tmp_path / "r", 1.0))
    assert logs.logger is first
    logs.update(_config(tmp_path / "r", 0.5))
    assert logs.logger is not first and logs.logger.rate == 0.5
    with pytest.raises(ServingError):
        logs.update(_config(""))
    assert logs.logger.rate == 0.5  # a refused config changes nothing
    logs.update(None)
    assert logs.logger is None and logs.sample() is None


def test_a_write_failure_is_counted_not_raised(tmp_path):
    def failing():
        raise OSError("disk full")

    logger = request_log.RequestLogger("m", _config(tmp_path / "f"))
    logger.log(failing, 1, "s", 0.0, "rest")
    _write(logger, 1)
    logger.close()
    assert logger.counts == {"written": 1, "dropped": 0, "failed": 1}
    [log_file] = request_log.log_files(str(tmp_path / "f"))
    [record] = request_log.read_logs([log_file])
    assert isinstance(record.log, prediction_log_pb2.PredictionLog) and record.latency_us == 1000
