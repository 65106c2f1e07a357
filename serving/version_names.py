"""Which directory names under a model's base path are versions: TF Serving's rule, the one place
for it (the server here, and components/model_versions.py for the Pusher, rollbacks and history).

TF Serving reads a version directory's name as a 64-bit integer (`absl::SimpleAtoi<int64>` in its
file-system storage path source) and ignores what does not parse: `.tmp-...` copies, `latest`, a
name too large for int64. Here a version name is ASCII digits only (`007` is version 7; `²`, which
Python's `str.isdigit` accepts, is not) whose value fits in int64.
"""

from __future__ import annotations

import re
from typing import Optional

MAX_VERSION = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")


def version_number(name: str) -> Optional[int]:
    """The version a directory name stands for, None when it is not a version."""
    name = name.rstrip("/")
    if not _DIGITS.fullmatch(name):
        return None
    number = int(name)
    return number if number <= MAX_VERSION else None
