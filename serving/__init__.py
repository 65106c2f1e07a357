"""A TensorFlow-Serving-compatible model server for the SavedModels the pipeline's Pusher pushes.

    python -m serving [--model_base_path DIR] [--model_name NAME] [--rest_api_port 8501] [--port 8500]

REST (rest.py, FastAPI on uvicorn) and gRPC (grpc_service.py, grpcio with the tensorflow-serving-api
protos) speak TF Serving's APIs; model_manager.py serves the newest version and swaps in new pushes;
batcher.py merges concurrent requests into one TensorFlow call; TF Serving's JSON is read by
json_parse.py (the body) and json_tensor.py (its tensors) and written by json_format.py. The
models are loaded with plain TensorFlow: no project code is needed to serve them.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # as every entry point (TFT's layer is Keras 2)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet console: TensorFlow's own start-up lines

# TF Serving's load retries, its flags' defaults (model_servers/main.cc): the server's flags
# (server.py) and the version manager (model_manager.py) both start from these
DEFAULT_MAX_NUM_LOAD_RETRIES = 5
DEFAULT_LOAD_RETRY_INTERVAL_MICROS = 60_000_000  # one minute
