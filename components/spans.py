"""Spans: purchases that arrive as one folder per span, and what one run reads of them.

A data directory holds either the flat layout (one train file and one eval file at its top: a
single span, number 0) or one folder per span:

    data_dir/
      dsf_asos_productIds.csv                  the catalog stays at the top
      dsf_asos_valid_....parquet               optional: the standing eval file
      span-1/dsf_asos_train_....parquet        a span's purchases (one or more files)
      span-1/dsf_asos_valid_....parquet        optional: the span's own eval purchases
      span-2/...

Span folders are `span-N` (span N, TFX's `{SPAN}`) or dated, `YYYY-MM-DD` or `YYYYMMDD` (TFX's
`{YYYY}{MM}{DD}`: the span number is the days since 1970-01-01). A run reads the newest span;
trains on a window of the last N spans; evaluates on the newest span's eval file when it has
one, else on the standing eval file; and its drift gate compares the newest span with the span
before it.

ExampleGen gets plain glob patterns, no `{SPAN}` (`input_config`): TFX's stock driver then
fingerprints every file the executor may read, on the local runner and in Vertex's pre-cache
check alike, and the executor resolves the layout itself (`read_layout`, `Layout.select`).
The same functions check a layout before a local run (runner/data.py): a malformed layout is one
`SpanLayoutError` line naming the folder.

Paths go through TFX's fileio: local directories and gs:// alike.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import json
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2

from pipeline import configs

FLAT_SPAN = 0  # the flat layout's one span
STANDING = "standing"  # eval_source of the standing eval file (the data directory's own)
# ExampleGen's input splits (names only matter to the driver's fingerprint and to this module):
# the flat files at the top, and the same file patterns one folder down.
TRAIN, EVAL = "train", "eval"
SPAN_TRAIN, SPAN_EVAL = "span_train", "span_eval"

_SPAN_FOLDER = re.compile(re.escape(configs.SPAN_PREFIX) + r"(\d+)")
_DATE_FOLDER = re.compile(r"(\d{4})-(\d{2})-(\d{2})|(\d{4})(\d{2})(\d{2})")


class SpanLayoutError(ValueError):
    """The data directory's layout cannot be read as spans; the message names the problem."""


def empty_span_text(folder: str, train_files: int) -> str:
    """Why a newest span whose train files hold no rows is refused (the local run's data checks,
    and the DriftGate wherever the pipeline runs)."""
    return (f"{folder}/: its train {'file has' if train_files == 1 else 'files have'} no rows: an empty "
            "span is nothing to train on or to compare (deliver its rows, or remove the folder: the span "
            "before it is then the newest)")


@dataclasses.dataclass(frozen=True)
class Span:
    number: int
    folder: str  # relative to the data directory; "" for the flat layout
    train: Tuple[str, ...]  # paths
    eval: Tuple[str, ...]

    @property
    def name(self) -> str:
        return self.folder or "the flat data"


@dataclasses.dataclass(frozen=True)
class Selection:
    """What one run reads: the newest span, the spans it trains on, its eval files, and the
    span its drift gate compares the newest one with."""

    newest: Span
    window: Tuple[Span, ...]  # oldest first, the newest last
    previous: Optional[Span]  # the span before the newest (inside the window or not)
    eval_files: Tuple[str, ...]
    eval_source: str  # the newest span's folder, or STANDING

    @property
    def train_files(self) -> List[str]:
        return [path for span in self.window for path in span.train]

    @property
    def window_spans(self) -> str:
        """"3,4,5": the span numbers trained on, as ExampleGen's artifact records them."""
        return ",".join(str(span.number) for span in self.window)


@dataclasses.dataclass(frozen=True)
class Layout:
    base: str
    spans: Tuple[Span, ...]  # ascending span numbers
    standing_eval: Tuple[str, ...]
    flat: bool

    def select(self, window: int) -> Selection:
        """The newest span, the last `window` spans, the eval files and the previous span."""
        if window < 1:
            raise SpanLayoutError(f"a span window of {window}: it must be 1 or more spans")
        newest = self.spans[-1]
        if newest.eval:
            eval_files, source = newest.eval, newest.folder
        elif self.standing_eval:
            eval_files, source = self.standing_eval, STANDING
        else:
            raise SpanLayoutError(
                f"no eval file: {newest.folder}/ has none and neither has the data directory "
                f"{self.base} (the standing eval file)")
        return Selection(newest=newest, window=self.spans[-window:],
                         previous=self.spans[-2] if len(self.spans) > 1 else None,
                         eval_files=eval_files, eval_source=source)


def span_number(folder: str) -> Optional[Tuple[str, int]]:
    """("span", N) for `span-N`, ("date", days since 1970-01-01) for `YYYY-MM-DD` / `YYYYMMDD`
    (TFX's date_to_span_number), None for a folder that is not a span; SpanLayoutError for a
    dated name that is no date."""
    match = _SPAN_FOLDER.fullmatch(folder)
    if match:
        return "span", int(match.group(1))
    match = _DATE_FOLDER.fullmatch(folder)
    if not match:
        return None
    year, month, day = (int(g) for g in (match.groups()[:3] if match.group(1) else match.groups()[3:]))
    try:
        datetime.date(year, month, day)
    except ValueError as e:
        raise SpanLayoutError(f"{folder}/: a dated span folder, but not a date ({e})") from None
    return "date", example_gen_utils.date_to_span_number(year, month, day)


def span_numbers(value: Any) -> List[int]:
    """Span numbers, ascending, from how artifacts and training.json hold a window: [2, 3, 4],
    "2,3,4" (ExampleGen's `window_spans`), "[2, 3, 4]" or 3; [] for nothing readable."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [part for part in value.replace(" ", ",").split(",") if part]
    if isinstance(value, int):
        value = [value]
    try:
        return sorted(int(v) for v in value or [])
    except (TypeError, ValueError):
        return []


def folder_of(files: Sequence[str]) -> str:
    """The span folder's name (`span-3`, `2024-03-02`) from its files' paths, "" without files."""
    return os.path.basename(os.path.dirname(files[0])) if files else ""


def number_ranges(numbers: List[int], names: Optional[Dict[int, str]] = None) -> str:
    """Span numbers as a person reads them: [1, 2, 3] "1-3", [1, 3] "1, 3", [1, 2, 4] "1-2, 4"
    (a gap in a window shows); with `names` (dated folders by day number), "20240101 to
    20240103", "20240101, 20240103" (found by exploratory testing: a window with a late day
    missing read as the whole range)."""
    parts, numbers = [], sorted(numbers)
    name = (lambda n: names[n]) if names else str
    joined = " to " if names else "-"
    start = 0
    for i in range(1, len(numbers) + 1):
        if i == len(numbers) or numbers[i] != numbers[i - 1] + 1:
            first, last = numbers[start], numbers[i - 1]
            parts.append(name(first) if first == last else f"{name(first)}{joined}{name(last)}")
            start = i
    return ", ".join(parts)


def window_names(window: Any, span_train_files: Any) -> Optional[List[str]]:
    """The folder names of a window of dated spans (`window`: as `span_numbers` reads it), None
    when any of them is not a dated folder of `span_train_files` (`dated_folders`)."""
    numbers, dated = span_numbers(window), dated_folders(span_train_files)
    return [dated[n] for n in numbers] if numbers and all(n in dated for n in numbers) else None


def dated_folders(span_train_files: Any) -> Dict[int, str]:
    """Span number -> folder name of the dated span folders in ExampleGen's `span_train_files`
    (span number -> train files, or its JSON): TFX's {YYYY}{MM}{DD} spans are day numbers, and a
    person reads the folder's date. Other spans are left out."""
    if isinstance(span_train_files, str):
        try:
            span_train_files = json.loads(span_train_files)
        except ValueError:
            return {}
    if not isinstance(span_train_files, dict):
        return {}
    folders = {}
    for number, paths in span_train_files.items():
        folder = folder_of(paths)
        try:
            parsed = span_number(folder) if folder else None
        except SpanLayoutError:
            parsed = None
        if parsed and parsed[0] == "date" and str(parsed[1]) == str(number):
            folders[int(number)] = folder
    return folders


def input_config(train_pattern: str, eval_pattern: str) -> example_gen_pb2.Input:
    """ExampleGen's input splits: the flat files and the span folders' files, as plain globs."""
    return example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=TRAIN, pattern=train_pattern),
        example_gen_pb2.Input.Split(name=EVAL, pattern=eval_pattern),
        example_gen_pb2.Input.Split(name=SPAN_TRAIN, pattern=f"*/{train_pattern}"),
        example_gen_pb2.Input.Split(name=SPAN_EVAL, pattern=f"*/{eval_pattern}"),
    ])


def is_flat(input_fingerprint: Optional[str]) -> Optional[bool]:
    """Whether an ExampleGen input fingerprint (TFX's "split:NAME,num_files:N,..." lines over
    `input_config`'s splits) is of the flat layout: train files at the top, none in span folders.
    None when it does not say (no fingerprint, or not of these splits). The flat layout is TFX's
    span 0, which a `span-0/` folder also is: only the fingerprint tells them apart."""
    files = {}
    for part in (input_fingerprint or "").split():
        match = re.match(r"split:([^,]+),num_files:(\d+)", part)
        if match:
            files[match.group(1)] = int(match.group(2))
    if TRAIN not in files or SPAN_TRAIN not in files:
        return None
    return files[TRAIN] > 0 and files[SPAN_TRAIN] == 0


def file_patterns(config: example_gen_pb2.Input) -> Tuple[str, str]:
    """(train, eval) file patterns of an `input_config`'s flat splits."""
    patterns = {split.name: split.pattern for split in config.splits}
    missing = [name for name in (TRAIN, EVAL) if name not in patterns]
    if missing:
        raise SpanLayoutError(f"ExampleGen's input_config has no split {missing} "
                              f"(components/spans.py input_config builds it)")
    return patterns[TRAIN], patterns[EVAL]


def _matching(directory: str, names: Sequence[str], pattern: str) -> Tuple[str, ...]:
    return tuple(os.path.join(directory, n) for n in sorted(names) if fnmatch.fnmatch(n, pattern))


def _entries(directory: str) -> Tuple[List[str], List[str]]:
    """(file names, folder names) directly in `directory` (gs:// listings end folders with /)."""
    if not fileio.isdir(directory):
        return [], []
    files, folders = [], []
    for entry in fileio.listdir(directory):
        name = str(entry).rstrip("/")
        if not name or name.startswith("."):
            continue
        (folders if fileio.isdir(os.path.join(directory, name)) else files).append(name)
    return files, folders


def read_layout(base: str, train_pattern: str, eval_pattern: str) -> Layout:
    """The spans under `base` (module docstring); SpanLayoutError naming what is wrong: flat and
    span files mixed, a span folder without a train file, two folders of one span number,
    `span-N` and dated folders mixed, purchase files in a folder that is not a span."""
    base = str(base).rstrip("/")
    files, folders = _entries(base)
    top_train, top_eval = _matching(base, files, train_pattern), _matching(base, files, eval_pattern)
    spans: Dict[int, Span] = {}
    kinds: Dict[str, str] = {}
    for folder in sorted(folders):
        names, subfolders = _entries(os.path.join(base, folder))
        directory = os.path.join(base, folder)
        train, evaluation = _matching(directory, names, train_pattern), _matching(directory, names, eval_pattern)
        parsed = span_number(folder)
        parts = [n for n in sorted(subfolders) if fnmatch.fnmatch(n, train_pattern) or fnmatch.fnmatch(n, eval_pattern)]
        if parsed is not None and parts:  # as the flat layout's check says it (runner/data.py)
            raise SpanLayoutError(f"{folder}/{parts[0]}: a directory, not a file: each purchase file must be one "
                                  "file (a parquet dataset written in parts: read it and write it as one file)")
        if parsed is None:
            if train or evaluation:
                raise SpanLayoutError(
                    f"{folder}/ holds purchase files ({os.path.basename((train or evaluation)[0])}) but "
                    "its name is not a span folder (span-N, YYYY-MM-DD or YYYYMMDD)")
            continue
        kind, number = parsed
        kinds.setdefault(kind, folder)
        if not train:
            others = [n for n in sorted(names) if n.endswith((".parquet", ".csv")) and n not in
                      {os.path.basename(e) for e in evaluation}]
            found = (f"; it has {', '.join(others[:6])}{' ...' if len(others) > 6 else ''}: purchase files "
                     "must be parquet with the ASOS names") if others else ""
            raise SpanLayoutError(f"{folder}/: no train file ({train_pattern}){found}; every span folder "
                                  "needs one (its eval file is optional)")
        if number in spans:
            raise SpanLayoutError(f"{spans[number].folder}/ and {folder}/ are both span {number}: "
                                  "keep one of them")
        spans[number] = Span(number, folder, train, evaluation)
    if len(kinds) > 1:
        raise SpanLayoutError(f"span folders of two namings ({kinds['span']}/ and {kinds['date']}/): "
                              "use span-N or dated folders, not both")
    if spans and top_train:
        raise SpanLayoutError(
            f"flat and span layouts mixed: {os.path.basename(top_train[0])} at the top of {base} "
            f"beside span folders ({', '.join(s.folder + '/' for s in sorted(spans.values(), key=_number)[:3])}"
            f"{' ...' if len(spans) > 3 else ''}); move the file into a span folder or remove the folders")
    if not spans:
        if not top_train:
            raise SpanLayoutError(f"no train file ({train_pattern}) and no span folder in {base}")
        return Layout(base, (Span(FLAT_SPAN, "", top_train, ()),), top_eval, flat=True)
    return Layout(base, tuple(sorted(spans.values(), key=_number)), top_eval, flat=False)


def _number(span: Span) -> int:
    return span.number


def describe(layout: Layout, selection: Selection, window: int) -> str:
    """One line for a person: which spans, the window, the eval file and the drift comparison."""
    if layout.flat:
        return "flat layout (one span): train and eval files at the top of the data directory"
    numbers = [s.number for s in layout.spans]
    shown = ", ".join(s.folder for s in layout.spans[-6:])
    more = f"{len(numbers) - 6} older, " if len(numbers) > 6 else ""
    evaluation = (f"the eval file of {selection.eval_source}/" if selection.eval_source != STANDING
                  else "the standing eval file")
    previous = (f"; drift: {selection.newest.folder} vs {selection.previous.folder}"
                if selection.previous else "; drift: nothing to compare (one span)")
    return (f"{len(numbers)} span(s) ({more}{shown}); newest {selection.newest.folder} (span "
            f"{selection.newest.number}); training window {len(selection.window)} of at most {window}: "
            f"{', '.join(s.folder for s in selection.window)}; eval: {evaluation}{previous}")
