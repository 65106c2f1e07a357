"""For tests, not the pipeline: what the tests of pushed versions need (unit tests import
nothing from tests/).

- `save_tiny_model`: a real SavedModel (one signature, one variable), saved in a second.
- `memory_object_store()`: an object store in memory (`memfs://bucket/...`), registered as a TFX
  file system for the length of a block, for tests of what the project writes to `gs://`:
  objects appear whole when written, directories are only name prefixes, there is no rename,
  and every write is recorded in order.

      with testing.memory_object_store() as store:
          ...  # fileio calls on memfs:// paths
          store.writes   # object paths in the order they were written
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Callable, Dict, Iterator, List, Optional

from tfx.dsl.io import filesystem, filesystem_registry

SCHEME = "memfs://"


class Store:
    def __init__(self):
        self.objects: Dict[str, bytes] = {}
        self.writes: List[str] = []
        self.fail_on: Optional[Callable[[str], bool]] = None  # object path -> raise instead of writing

    def put(self, path: str, data: bytes) -> None:
        if self.fail_on is not None and self.fail_on(path):
            raise OSError(28, "No space left on device (fake object store)", path)
        self.objects[path] = data
        self.writes.append(path)

    def under(self, prefix: str) -> List[str]:
        prefix = prefix.rstrip("/") + "/"
        return [p for p in self.objects if p.startswith(prefix)]


_STORE: Optional[Store] = None


class _Writer(io.BytesIO):
    def __init__(self, path: str, text: bool):
        super().__init__()
        self.path, self.text = path, text

    def write(self, data):  # noqa: D401
        return super().write(data.encode() if isinstance(data, str) else data)

    def close(self):
        if self.closed:
            return
        try:
            _STORE.put(self.path, self.getvalue())  # the object appears whole, at close
        finally:
            super().close()


class MemoryFilesystem(filesystem.Filesystem):
    SUPPORTED_SCHEMES = [SCHEME]

    @staticmethod
    def open(name, mode="r"):
        if "w" in mode:
            return _Writer(name, "b" not in mode)
        if name not in _STORE.objects:
            raise filesystem.NotFoundError(name)
        data = _STORE.objects[name]
        return io.BytesIO(data) if "b" in mode else io.StringIO(data.decode())

    @staticmethod
    def copy(src, dst, overwrite=False):
        if not overwrite and dst in _STORE.objects:
            raise OSError(f"{dst} exists")
        _STORE.put(dst, _STORE.objects[src])

    @staticmethod
    def exists(path):
        return path.rstrip("/") in _STORE.objects or bool(_STORE.under(path))

    @staticmethod
    def glob(pattern):
        import fnmatch
        return sorted(p for p in _STORE.objects if fnmatch.fnmatch(p, pattern))

    @staticmethod
    def isdir(path):
        return bool(_STORE.under(path))

    @staticmethod
    def listdir(path):
        prefix = path.rstrip("/") + "/"
        names = set()
        for p in _STORE.under(path):
            rest = p[len(prefix):]
            names.add(rest.split("/")[0] + "/" if "/" in rest else rest)
        return sorted(names)

    @staticmethod
    def makedirs(path):
        pass  # no directories in an object store

    @staticmethod
    def mkdir(path):
        pass

    @staticmethod
    def remove(path):
        _STORE.objects.pop(path, None)

    @staticmethod
    def rename(src, dst, overwrite=False):
        raise NotImplementedError("an object store has no rename")

    @staticmethod
    def rmtree(path):
        for p in _STORE.under(path):
            del _STORE.objects[p]

    @staticmethod
    def stat(path):
        return type("Stat", (), {"length": len(_STORE.objects[path])})()

    @staticmethod
    def walk(top, topdown=True, onerror=None):
        top = top.rstrip("/")
        directories: Dict[str, set] = {}
        files: Dict[str, list] = {}
        for p in _STORE.under(top):
            parts = p[len(top) + 1:].split("/")
            for i in range(len(parts)):
                here = "/".join([top, *parts[:i]])
                directories.setdefault(here, set())
                files.setdefault(here, [])
                if i == len(parts) - 1:
                    files[here].append(parts[i])
                else:
                    directories[here].add(parts[i])
        for here in sorted(directories, key=lambda d: (d.count("/"), d)):
            yield here, sorted(directories[here]), sorted(files[here])


def upload(local_dir: str, target: str) -> None:
    """Puts the files of a local directory under `target` (memfs://...), not recorded as writes."""
    for directory, _, names in os.walk(local_dir):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                _STORE.objects[target.rstrip("/") + "/" + os.path.relpath(path, local_dir)] = f.read()


@contextlib.contextmanager
def memory_object_store() -> Iterator[Store]:
    """A fresh store behind memfs:// for the length of the block."""
    global _STORE
    _STORE = Store()
    registry = filesystem_registry.DEFAULT_FILESYSTEM_REGISTRY
    before = registry._preferred_filesystem_by_scheme.get(SCHEME)
    registry.register(MemoryFilesystem, priority=0)
    try:
        yield _STORE
    finally:
        if before is None:
            registry._preferred_filesystem_by_scheme.pop(SCHEME, None)
        _STORE = None


def save_tiny_model(path: str, weight: float = 2.0) -> str:
    """A SavedModel of one signature (`y = weight * x`, float[B]) and one variable, saved in a
    second: for tests of versions that need a real SavedModel but not the recommender."""
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self):
            self.w = tf.Variable([weight, 3.0])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return {"y": x * self.w[0]}

    module = Tiny()
    tf.saved_model.save(module, path, signatures=module.__call__)
    return path
