"""The Pusher's base directory of numbered versions, TF Serving's layout: which versions are
complete, which one is served, and how a version is published so that no reader ever sees half
of one.

    <base>/1796012949/            a version: a SavedModel (saved_model.pb, variables/, assets/,
                                  fingerprint.pb) and assets.extra/model_card.{json,md}
    <base>/.tmp-<random>/         a version being written (local file systems): no number yet

**Publishing** (`publish`, used by the Pusher and by a rollback):
- On a local file system the version is written under a temporary name in the base directory
  (`.tmp-...`: TF Serving's `SimpleAtoi` and `serving/version_names.py` both refuse it as a version)
  and renamed to its number when every file is there: `rename(2)` within one file system is
  atomic, so a numbered directory is always complete. Any failure (a full disk, Ctrl-C) removes
  the temporary copy; a copy left by a killed process is removed by a later publish once it is
  an hour old.
- On an object store (`gs://`), where a rename is a copy of each object, the files are copied
  straight into `<base>/<version>/` in an order: every file but `saved_model.pb` (the model card
  included), then `saved_model.pb`. An object becomes visible only when it is whole, so once
  `saved_model.pb` is listed the version is complete (TFX's Pusher copies in this order too, and
  `tf.saved_model.save` writes that file last for the same reason). A failed copy is removed as
  far as the store allows.

**Complete** (`problem`): `saved_model.pb` parses as a SavedModel with a `serve` graph, and
`variables/variables.index` and every `variables.data-*-of-N` shard exist. A numbered directory
that is not complete (left by a crash before pushes were atomic, or a copy by hand still under
way) is never the served version, never counts as "already pushed", and is never removed here:
it is reported (`make history`) for a person to delete.

**Served** (DECISIONS D1): the newest complete version, which TF Serving's default policy
(latest) and `make serve` serve.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import time
import uuid
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from tfx.dsl.io import fileio

from serving.version_names import version_number

SAVED_MODEL = "saved_model.pb"
FINGERPRINT = "fingerprint.pb"
ASSETS_EXTRA = "assets.extra"
VARIABLES_INDEX = "variables/variables.index"
TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 3600  # a temporary copy this old belongs to no running publish
SERVE_TAG = "serve"

log = logging.getLogger(__name__)

# version number, its directory -> {path relative to the version: bytes}: files written into the
# version beside (or over) the copied ones, e.g. the model card, which names its own version
ExtraFiles = Callable[[int, str], Dict[str, bytes]]


@dataclasses.dataclass(frozen=True)
class Version:
    number: int
    path: str
    problem: Optional[str] = None  # why it is not complete; None: complete

    @property
    def complete(self) -> bool:
        return self.problem is None


def is_local(path: str) -> bool:
    return "://" not in path


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts]) if not is_local(base) else os.path.join(base, *parts)


def _children(base: str) -> List[str]:
    if not fileio.isdir(base):
        return []
    return sorted({name.rstrip("/").split("/")[0] for name in fileio.listdir(base)})


def problem(path: str) -> Optional[str]:
    """Why the SavedModel at `path` is not complete, in a few words; None when it is."""
    from google.protobuf import message
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model_path = _join(path, SAVED_MODEL)
    if not fileio.exists(saved_model_path):
        return f"no {SAVED_MODEL}"
    saved_model = saved_model_pb2.SavedModel()
    try:
        with fileio.open(saved_model_path, "rb") as f:
            saved_model.ParseFromString(f.read())
    except message.DecodeError:
        return f"{SAVED_MODEL} is not a SavedModel (cut short?)"
    if not any(SERVE_TAG in g.meta_info_def.tags for g in saved_model.meta_graphs):
        return f"no '{SERVE_TAG}' graph in {SAVED_MODEL}"
    variables = _join(path, "variables")
    if not fileio.exists(_join(path, VARIABLES_INDEX)):
        return f"no {VARIABLES_INDEX}"
    shards = [n.rstrip("/") for n in fileio.listdir(variables) if ".data-" in n]
    total = {n.rsplit("-of-", 1)[-1] for n in shards}
    if not shards or len(total) != 1 or len(shards) != int(total.pop()):
        return "variables/ is missing data shards"
    return None


def numbered(base: str) -> List[Tuple[int, str]]:
    """(number, path) of the numbered directories under `base`, newest first, unchecked."""
    named = {}
    for name in _children(base):  # sorted: of `007` and `7`, the first
        number = version_number(name)
        if number is not None:
            named.setdefault(number, name)
    return [(number, _join(base, named[number])) for number in sorted(named, reverse=True)]


def scan(base: str) -> Iterator[Version]:
    """The numbered directories under `base`, newest first, each with its `problem` (if any),
    checked one at a time as they are asked for."""
    for number, path in numbered(base):
        yield Version(number, path, problem(path))


def versions(base: str) -> List[Version]:
    """Every numbered directory under `base`, newest first, each with its `problem` (if any)."""
    return list(scan(base))


def served(base: str) -> Optional[Version]:
    """The newest complete version (D1), None when there is none."""
    return next((v for v in scan(base) if v.complete), None)


def find(base: str, number: int) -> Optional[Version]:
    return next((v for v in versions(base) if v.number == number), None)


def temporary_copies(base: str) -> List[str]:
    """Paths of the temporary copies under `base` (publishes under way, or killed)."""
    return [_join(base, name) for name in _children(base) if name.startswith(TEMP_PREFIX)]


def next_version(base: str, now: Optional[float] = None) -> int:
    """TFX's version number (Unix seconds), or one more than the largest number taken when that
    is larger (a rollback, or two publishes in one second): a new version is always the newest."""
    taken = [n for n in map(version_number, _children(base)) if n is not None]
    return max(int(time.time() if now is None else now), max(taken, default=0) + 1)


def copy_order(source: str) -> List[str]:
    """The files of the directory `source`, relative to it, in the order they are copied:
    `saved_model.pb` (of the top directory) last."""
    files = []
    for directory, _, names in fileio.walk(source):
        relative = os.path.relpath(directory, source) if is_local(source) else \
            directory.rstrip("/")[len(source.rstrip("/")) + 1:]
        for name in sorted(names):
            files.append(name if relative in (".", "") else f"{relative}/{name}")
    files.sort(key=lambda f: f == SAVED_MODEL)  # stable: everything else keeps the walk's order
    return files


def _write(path: str, data: bytes) -> None:
    fileio.makedirs(os.path.dirname(path))
    with fileio.open(path, "wb") as f:
        f.write(data)


def _copy_into(source: str, target: str, extras: Dict[str, bytes]) -> None:
    """Copies `source` into `target` (copy_order), writing `extras` (over the source's files of
    the same names) before `saved_model.pb`."""
    files = [f for f in copy_order(source) if f not in extras]
    last = files.pop() if files and files[-1] == SAVED_MODEL else None
    fileio.makedirs(target)
    for relative in files:
        fileio.makedirs(os.path.dirname(_join(target, relative)))
        fileio.copy(_join(source, relative), _join(target, relative), overwrite=True)
    for relative, data in sorted(extras.items()):
        _write(_join(target, relative), data)
    if last is not None:
        fileio.copy(_join(source, last), _join(target, last), overwrite=True)


def _remove(path: str) -> None:
    try:
        if fileio.exists(path):
            fileio.rmtree(path)
    except Exception:  # noqa: BLE001 - cleaning up after a failure must not hide the failure
        log.warning("could not remove %s; delete it by hand", path, exc_info=True)


def remove_stale_copies(base: str, max_age_seconds: float = STALE_TEMP_SECONDS) -> List[str]:
    """Removes temporary copies older than `max_age_seconds` (their publish was killed); local
    file systems only. Returns their paths."""
    removed = []
    if is_local(base):
        for path in temporary_copies(base):
            try:
                age = time.time() - os.stat(path).st_mtime
            except OSError:
                continue
            if age > max_age_seconds:
                _remove(path)
                removed.append(path)
    return removed


def publish(source: str, base: str, extra_files: Optional[ExtraFiles] = None,
            now: Optional[float] = None) -> Version:
    """Publishes the SavedModel directory `source` as a new version under `base` (module
    docstring: atomic rename on a local file system, ordered copy on an object store), with
    `extra_files(version, path)` written into it. Returns the new version. On failure nothing
    numbered is left (local) and the exception is raised as it was."""
    extra_files = extra_files or (lambda number, path: {})
    fileio.makedirs(base)
    if not is_local(base):
        return _publish_ordered(source, base, extra_files, now)
    remove_stale_copies(base)
    temporary = os.path.join(base, f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{os.getpid()}")
    try:
        number = next_version(base, now)
        extras = extra_files(number, os.path.join(base, str(number)))
        _copy_into(source, temporary, extras)
        while True:
            target = os.path.join(base, str(number))
            if not os.path.lexists(target):
                try:
                    # a rename onto an existing empty directory would replace it: checked above;
                    # onto a non-empty one it fails (ENOTEMPTY/EEXIST): another publish took it
                    os.rename(temporary, target)
                    return Version(number, target)
                except OSError as e:
                    if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
            number = next_version(base, now)
            for relative, data in extra_files(number, os.path.join(base, str(number))).items():
                _write(os.path.join(temporary, relative), data)
    except BaseException:
        _remove(temporary)
        raise


def _publish_ordered(source: str, base: str, extra_files: ExtraFiles, now: Optional[float]) -> Version:
    number = next_version(base, now)
    target = _join(base, str(number))
    try:
        _copy_into(source, target, extra_files(number, target))
    except BaseException:
        _remove(target)
        raise
    return Version(number, target)
