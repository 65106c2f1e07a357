"""Settings of the Vertex path that are wrong stop with a SettingError naming flag and variable."""

import pytest

from kubeflow_v2 import settings

REQUIRED = ["--project", "p", "--region", "europe-west1", "--bucket", "my-bucket", "--image", "img:1"]


@pytest.mark.parametrize("flag, value, expected", [
    ("--bucket", "gs://", "--bucket or RECSYS_GCS_BUCKET: 'gs://' is not a Cloud Storage bucket"),
    ("--bucket", "My Bucket", "is not a Cloud Storage bucket"),
    ("--pipeline-name", "Bad Name!", "--pipeline-name or RECSYS_PIPELINE_NAME: 'Bad Name!' is not a pipeline name"),
    ("--dataflow-max-workers", "-3", "--dataflow-max-workers or RECSYS_DATAFLOW_MAX_WORKERS: -3 is not a positive"),
    ("--dataflow-disk-size-gb", "0", "--dataflow-disk-size-gb or RECSYS_DATAFLOW_DISK_SIZE_GB: 0 is not a positive"),
])
def test_a_malformed_setting_is_named(flag, value, expected):
    with pytest.raises(settings.SettingError, match=expected.replace("(", "\\(")):
        settings.parse_compile_args(REQUIRED + [flag, value], environ={})


def test_bucket_forms():
    for given, bucket in [("my-bucket", "gs://my-bucket"), ("gs://my-bucket/", "gs://my-bucket"),
                          ("gs://my.bucket_1/team/x", "gs://my.bucket_1/team/x")]:
        config, _, _ = settings.parse_compile_args(REQUIRED + ["--bucket", given], environ={})
        assert config.bucket == bucket
        assert config.pipeline_root == bucket + "/pipeline_root"
