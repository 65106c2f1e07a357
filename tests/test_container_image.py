"""The container image definition, checked without a Docker engine: it installs the same lock file
as the local environment (hash-checked), sets Keras 2, ships the package and the schema where the
compiled pipeline expects them, and its entry point modules exist. setup.py is built for real."""

import ast
import json
import fnmatch
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile

from pipeline import configs

ROOT = configs.PROJECT_DIR
LOCK = "env/requirements.lock"


def _read(name):
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


def _instructions():
    """(INSTRUCTION, argument text) of the Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in _read("Dockerfile").splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            lines.append((word.upper(), rest.strip()))
        current = ""
    return lines


def _args():
    return dict(rest.split("=", 1) for word, rest in _instructions() if word == "ARG" and "=" in rest)


def _expand(text):
    for name, value in _args().items():
        text = text.replace("${" + name + "}", value)
    return text


def _locked_version(package):
    match = re.search(rf"^{re.escape(package)}==(\S+)", _read(LOCK), re.MULTILINE)
    assert match, f"{package} not in {LOCK}"
    return match.group(1)


def test_base_image_is_debian_13_python_313_or_tfx_121():
    bases = [_expand(rest.split()[0]) for word, rest in _instructions() if word == "FROM"]
    final = bases[-1]
    assert (re.fullmatch(r"python:3\.13(\.\d+)?-(slim-)?trixie", final)
            or final == "gcr.io/tfx-oss-public/tfx:1.21.0"), final


def test_installs_the_local_lock_hash_checked():
    copies = [rest.split() for word, rest in _instructions() if word == "COPY" and not rest.startswith("--from")]
    lock_dest = [c[-1] for c in copies if c[0] == LOCK]
    assert lock_dest, f"the Dockerfile does not copy {LOCK}"
    runs = [rest for word, rest in _instructions() if word == "RUN"]
    sync = [r for r in runs if "pip sync" in r or ("pip install" in r and "-r" in r)]
    assert any("--require-hashes" in r and lock_dest[0] in r for r in sync), sync
    # the same file and the same check as the local environment
    run_in_env = _read("env/run-in-env")
    assert 'LOCK_FILE="$PROJECT_DIR/env/requirements.lock"' in run_in_env
    assert "--require-hashes" in run_in_env
    # the package on top adds no other versions
    assert any("--no-deps" in r and "/src" in r for r in runs)


def test_keras_2_and_the_beam_harness():
    env = " ".join(rest for word, rest in _instructions() if word == "ENV")
    assert re.search(r"\bTF_USE_LEGACY_KERAS=1\b", env)
    # Dataflow workers start this image: Beam's boot of the locked Beam version, same Python
    beam = _expand(next(rest for word, rest in _instructions() if word == "FROM" and "beam" in rest).split()[0])
    assert beam == f"apache/beam_python3.13_sdk:{_locked_version('apache-beam')}"
    assert ("ENTRYPOINT", '["/opt/apache/beam/boot"]') in _instructions()
    assert "RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1" in env  # boot must not make a venv without our packages


def test_schema_at_the_path_the_compiled_pipeline_uses():
    copies = [rest.split() for word, rest in _instructions() if word == "COPY" and not rest.startswith("--from")]
    assert ["schema/schema.pbtxt", configs.IMAGE_SCHEMA_DIR + "/schema.pbtxt"] in copies
    # the Importer imports the whole directory: it must hold that one file
    assert [f for f in os.listdir(os.path.join(ROOT, "schema")) if f != "__pycache__"] == ["schema.pbtxt"]


def test_dockerignore_keeps_what_the_dockerfile_copies():
    patterns = [p.strip() for p in _read(".dockerignore").splitlines() if p.strip() and not p.startswith("#")]
    sources = [src for word, rest in _instructions() if word == "COPY" and not rest.startswith("--from")
               for src in rest.split()[:-1]]
    assert sources
    for src in sources:
        assert os.path.exists(os.path.join(ROOT, src)), src
        for pattern in patterns:
            assert not fnmatch.fnmatch(src.rstrip("/"), pattern.rstrip("/")), (src, pattern)
            assert not src.startswith(pattern.rstrip("/") + "/"), (src, pattern)


def test_entry_point_modules_exist():
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    # what every compiled executor runs (python -m MODULE), imported by the Dockerfile's check too
    command = list(kubeflow_v2_dag_runner.KUBEFLOW_TFX_CMD)
    assert command[:2] == ["python", "-m"] and importlib.util.find_spec(command[2]) is not None
    assert command[2] in " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert importlib.util.find_spec("tfx.orchestration.kubeflow.v2.file_based_example_gen.driver")
    # what every executor of the open-source KFP package runs
    from kubeflow_v2 import kfp_package
    assert list(kfp_package.ENTRYPOINT[:2]) == ["python", "-m"]
    assert importlib.util.find_spec(kfp_package.ENTRYPOINT[2]) is not None
    assert kfp_package.ENTRYPOINT[2] in " ".join(rest for word, rest in _instructions() if word == "RUN")
    # the console commands of setup.py
    tree = ast.parse(_read("setup.py"))
    scripts = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", "") == "CONSOLE_SCRIPTS")
    assert len(scripts) == 4
    for line in scripts:
        module, func = line.split("=", 1)[1].strip().split(":")
        assert callable(getattr(importlib.import_module(module), func)), line


def test_setup_py_builds_the_package(tmp_path):
    src = tmp_path / "src"
    for name in ["setup.py", "local_runner.py", "kubeflow_v2_runner.py", "vertex_submit.py", "kfp_submit.py",
                 "env/requirements.in", "schema/schema.pbtxt"]:
        os.makedirs(os.path.dirname(src / name), exist_ok=True)
        shutil.copy(os.path.join(ROOT, name), src / name)
    for package in ["cli", "pipeline", "components", "models", "runner", "kubeflow_v2", "serving"]:
        shutil.copytree(os.path.join(ROOT, package), src / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(tmp_path / "dist"), str(src)], check=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("asos_recommender-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        metadata = next(z.read(n).decode() for n in names if n.endswith("METADATA"))
    for module in ["pipeline/configs.py", "pipeline/pipeline.py", "kubeflow_v2/settings.py",
                   "models/preprocessing.py", "components/catalog_check.py", "serving/server.py",
                   "kubeflow_v2_runner.py", "vertex_submit.py", "kfp_submit.py", "local_runner.py",
                   "kubeflow_v2/kfp_entrypoint.py"]:
        assert module in names, module
    assert any(n.endswith("data/share/asos-recommender/schema/schema.pbtxt") for n in names)
    for command in ["asos-recsys-run", "asos-recsys-compile", "asos-recsys-submit", "asos-recsys-submit-kfp"]:
        assert command in entry_points
    assert "Requires-Dist: tfx==1.21.0" in metadata and "pytest" not in metadata


def _stages():
    """{stage name or index: [(INSTRUCTION, argument)]} in Dockerfile order."""
    stages, current = {}, None
    for word, rest in _instructions():
        if word == "FROM":
            parts = rest.split()
            current = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else len(stages)
            stages[current] = []
        if current is not None:  # global ARGs come before the first FROM
            stages[current].append((word, rest))
    return stages


def test_serving_stage_runs_the_model_server_and_the_pipeline_image_stays_the_default():
    stages = _stages()
    assert "serving" in stages and list(stages)[-1] != "serving"  # the last stage is the default target
    serving = stages["serving"]
    base = _expand(serving[0][1].split()[0])
    assert re.fullmatch(r"python:3\.13(\.\d+)?-(slim-)?trixie", base)
    assert ("COPY", "--from=build /opt/venv /opt/venv") in serving  # the pipeline's own venv (lock)
    env = " ".join(rest for word, rest in serving if word == "ENV")
    assert re.search(r"\bTF_USE_LEGACY_KERAS=1\b", env) and f"MODEL_NAME={configs.MODEL_NAME}" in env
    entrypoint = json.loads(next(rest for word, rest in serving if word == "ENTRYPOINT"))
    assert entrypoint[:3] == ["python", "-m", "serving"] and "0.0.0.0" in entrypoint
    assert importlib.util.find_spec("serving.server") is not None
    from serving import server
    server.parser().parse_args(entrypoint[3:])  # the image's flags are the server's
    ports = " ".join(rest for word, rest in serving if word == "EXPOSE").split()
    assert ports == [str(server.DEFAULT_REST_PORT), str(server.DEFAULT_GRPC_PORT)]
    assert ("COPY", "serving/ /src/serving/") in stages["build"]
