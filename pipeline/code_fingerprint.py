"""Fingerprints of the module code a component runs, for TFX's cache.

TFX fingerprints a `module_file` for its cache, but not code named by dotted path (how this
pipeline names `preprocessing_fn` and `run_fn`, so that nothing is uploaded when compiling for
Vertex), nor the module of TFMA's custom metrics (named in the eval config). The pipeline passes
`fingerprint(dotted_path)` in Transform's and the Trainer's custom_config, and
`module_fingerprint(module)` of the metrics in the Evaluator's `module_code`: a change in the code
that component runs re-runs it, and a change anywhere else (the Pusher, the Vertex settings,
another component's module code) does not.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
from typing import List



def _module_file(name: str) -> str | None:
    """The .py file of module `name` of a project package, found on disk without importing it
    (importing module code would load TensorFlow); None if there is no such module."""
    root, _, rest = name.partition(".")
    spec = importlib.util.find_spec(root)  # the package's __init__ only
    if spec is None or not spec.submodule_search_locations:
        return None
    base = os.path.join(list(spec.submodule_search_locations)[0], *rest.split(".")) if rest else (
        list(spec.submodule_search_locations)[0])
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return None


def _imported_modules(path: str, package: str) -> List[str]:
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]  # `from pkg import module`
    return names


def module_closure(module: str) -> List[str]:
    """The files `module` runs from its own top-level package (`models`): itself and,
    transitively, every module of that package it imports (sorted paths). Module code imports
    nothing else of this project, so this is all of the project's code it runs."""
    root = module.split(".")[0]
    seen, todo = {}, [module]
    while todo:
        name = todo.pop()
        if name.split(".")[0] != root:
            continue
        path = _module_file(name)
        if path is None or path in seen:
            continue
        seen[path] = name
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        todo += _imported_modules(path, package)
    return sorted(seen)


def fingerprint(dotted_path: str) -> str:
    """sha256 (12 hex) of the code behind `pkg.module.function`: the module and its imports."""
    module = dotted_path.rpartition(".")[0]
    try:
        return module_fingerprint(module)
    except ValueError as e:
        raise ValueError(f"{dotted_path}: {e}") from None


def module_fingerprint(module: str) -> str:
    """sha256 (12 hex) of module `pkg.module` and of the project modules it imports (a module
    named rather than a function: the Evaluator's metrics, which TFMA imports by module name)."""
    files = module_closure(module)
    if not files:
        raise ValueError(f"no module {module!r} in this project")
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            digest.update(os.path.relpath(path, os.path.dirname(files[0])).encode() + b"\0" + f.read())
    return digest.hexdigest()[:12]
