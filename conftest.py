"""pytest set-up shared by the tests beside the code and under tests/."""

import os
import sys

# Before TensorFlow is first imported anywhere (TFT/TFMA need Keras 2); as in TFX's own conftest,
# no gRPC fork support under Beam's in-process runner.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import pytest  # noqa: E402

from tests import fake_asos  # noqa: E402


@pytest.fixture(autouse=True)
def _no_throwaway_tfx_package(monkeypatch):
    """Fails a test whose Beam component would have TFX build its throwaway TFX sdist (2-6 s and
    46 MB left under /tmp each time): Beam args must declare a dependency
    (configs.local_beam_args)."""
    module = sys.modules.get("tfx.utils.dependency_utils")
    if module is not None:
        def refuse():
            raise AssertionError("these Beam args declare no dependency, so TFX would build a "
                                 "throwaway TFX sdist under /tmp: use configs.local_beam_args()")
        monkeypatch.setattr(module, "build_ephemeral_package", refuse)


@pytest.fixture(scope="session")
def curated_schema():
    """schema/schema.pbtxt, parsed (for tests of module code, which knows no pipeline paths)."""
    from tfx.utils import io_utils

    from pipeline import configs
    return io_utils.SchemaReader().read(os.path.join(configs.SCHEMA_DIR, "schema.pbtxt"))


@pytest.fixture
def fake_data_dir(tmp_path):
    """A directory with small generated data of the ASOS shape (the four files)."""
    data_dir = tmp_path / "data"
    fake_asos.write_fake_asos(str(data_dir))
    return str(data_dir)


@pytest.fixture(scope="session")
def write_fake_asos():
    """tests/fake_asos.py's `write_fake_asos` (the four files of the ASOS shape, generated), for
    unit tests, which import nothing from tests/."""
    return fake_asos.write_fake_asos


@pytest.fixture(scope="session")
def write_fake_spans():
    """tests/fake_asos.py's `write_fake_spans` (generated spans: span-1/ ... with skewed
    popularity, new products and heavy buyers), for unit tests, which import nothing from tests/."""
    return fake_asos.write_fake_spans


@pytest.fixture(scope="session")
def small_span_thresholds():
    """The drift thresholds of generated spans (a few hundred rows are noisier than the
    ASOS-size spans of the defaults): tests/fake_asos.py SPAN_DRIFT_THRESHOLDS."""
    return dict(fake_asos.SPAN_DRIFT_THRESHOLDS)
