"""How every command of the project declares its flags, and the small parsers they share.

Used by local_runner.py, kubeflow_v2_runner.py and vertex_submit.py (kubeflow_v2/settings.py),
the flags both runners share (pipeline/configs.py), `python -m serving` (serving/server.py) and
the Kubeflow V2 harness (kubeflow_v2/harness.py).

A `Flag` is declared once: its name (and aliases), help, default, how its text is parsed, and
optionally an environment variable that stands in for it. `add(parser, flags)` puts flags on an
argparse parser, `resolve(args, flags)` gives their values:

- a flag without a variable is parsed by argparse itself: a bad value ends in argparse's usage
  line and one `error:` line, exit code 2;
- a flag with a variable is parsed by `resolve`, flag > variable > default, so that a missing or
  bad value is one `FlagError` line naming both (the runners print it and exit with code 2).

A parser takes the text and returns the value, or raises `BadValue` with a message that says
what is wrong with it ("-3 is not a positive number"), which argparse and `resolve` both show.

Imports nothing of the project and nothing heavy: every layer may use it, and --help stays instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

VALUE = "value"  # --flag VALUE
SWITCH = "switch"  # --flag alone: True (default False)
TOGGLE = "toggle"  # --flag / --no-flag (with a variable: 1/0, true/false)
OPTIONAL = "optional"  # --flag alone (True) or --flag=VALUE: TF Serving's booleans
REPEAT = "repeat"  # --flag VALUE, repeatable; with a variable: one text that `parse` splits
KINDS = (VALUE, SWITCH, TOGGLE, OPTIONAL, REPEAT)


class BadValue(argparse.ArgumentTypeError, ValueError):
    """A value a parser refuses; the message says why, in one line. argparse shows it as is
    (an ArgumentTypeError), `resolve` as the cause of a FlagError (a ValueError)."""


class FlagError(ValueError):
    """A flag (or its variable) is missing or malformed; the message is one line naming both."""


@dataclasses.dataclass(frozen=True)
class Flag:
    name: str  # "--project" (a name without dashes: a positional argument); messages use it
    help: str  # a flag without a variable may use argparse's %(default)s
    env: Optional[str] = None  # the variable that stands in for the flag
    parse: Callable[[str], Any] = str
    default: Any = None
    required: bool = False
    kind: str = VALUE
    aliases: Tuple[str, ...] = ()  # other spellings: "--rest-api-port" beside "--rest_api_port"
    dest: Optional[str] = None  # default: the name without its dashes, '-' as '_'
    choices: Optional[Tuple[str, ...]] = None
    metavar: Optional[str] = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"flag {self.name}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def key(self) -> str:
        """The attribute of the parsed arguments, and the key `resolve` returns."""
        return self.dest or self.name.lstrip("-").replace("-", "_")

    def describe(self) -> str:
        return f"{self.name} or {self.env}" if self.env else self.name


def add(parser: argparse.ArgumentParser, flags: Sequence[Flag]) -> None:
    """Puts `flags` on `parser` (see the module docstring for who parses their values)."""
    for f in flags:
        if not f.name.startswith("-"):  # positional
            parser.add_argument(f.name, help=f.help, type=f.parse, metavar=f.metavar)
            continue
        kw: Dict[str, Any] = {"dest": f.key}
        if f.env:  # parsed by resolve: argparse keeps the text, None when the flag is not given
            kw["help"] = f"{f.help} [env {f.env}]" + (" (required)" if f.required else "")
            kw["default"] = None
        else:
            kw["help"] = f.help
            kw["default"] = list(f.default or ()) if f.kind == REPEAT else f.default
            kw["required"] = f.required
            if f.kind in (VALUE, OPTIONAL, REPEAT):
                kw["type"] = f.parse
        if f.kind == SWITCH:
            kw["action"] = "store_true"
            kw["default"] = None if f.env else bool(f.default)
        elif f.kind == TOGGLE:
            kw["action"] = argparse.BooleanOptionalAction
        elif f.kind == OPTIONAL:
            kw.update(nargs="?", const=True)
        elif f.kind == REPEAT:
            kw["action"] = "append"
        if f.choices:
            kw["choices"] = f.choices
        if f.metavar:
            kw["metavar"] = f.metavar
        parser.add_argument(f.name, *f.aliases, **kw)


def resolve(args: argparse.Namespace, flags: Sequence[Flag],
            environ: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """{key: value} of `flags` from the parsed arguments; for a flag with a variable: the flag,
    else the variable (when not blank), else the default.

    Raises FlagError (one line naming the flag and the variable) for a missing required value
    or a value that does not parse."""
    environ = os.environ if environ is None else environ
    values: Dict[str, Any] = {}
    missing: List[str] = []  # all of them at once (found by exploratory testing: one a try)
    for f in flags:
        given = getattr(args, f.key, None)
        if not f.env:
            values[f.key] = given
            continue
        try:
            if given is not None and f.kind == REPEAT:
                value = _combine([f.parse(item) for item in given])
            elif given is not None:
                value = bool(given) if f.kind in (SWITCH, TOGGLE) else f.parse(given)
            elif environ.get(f.env, "").strip():
                value = f.parse(environ[f.env])
            else:
                value = f.default
        except ValueError as e:
            raise FlagError(f"bad value for {f.describe()}: {e}") from None
        if f.required and (value is None or str(value).strip() == ""):
            what = f.help.split(",")[0].split(" (")[0].split(":")[0]
            missing.append(f"{what} (pass {f.name} or set {f.env})")
            continue
        if f.kind == REPEAT:
            value = dict(value) if isinstance(value, dict) else list(value)  # never the default itself
        values[f.key] = value
    if missing:
        raise FlagError(f"missing required setting{'s' if len(missing) > 1 else ''}: {'; '.join(missing)}")
    return values


def _combine(parts: List[Any]) -> Any:
    """A repeated flag's parsed values: dicts merge, lists concatenate."""
    if parts and isinstance(parts[0], dict):
        return {k: v for part in parts for k, v in part.items()}
    return [item for part in parts for item in part]


# --- The parsers --------------------------------------------------------------------------------
def boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise BadValue(f"{text!r} is not a boolean (use 1/0, true/false)")


def integer(minimum: Optional[int] = None, maximum: Optional[int] = None,
            what: str = "a whole number") -> Callable[[str], int]:
    """A parser of whole numbers in [minimum, maximum]; `what` ends its message
    ("-1 is not a number of workers (0: one per core)")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise BadValue(f"{text!r} is not {what}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise BadValue(f"{value} is not {what}")
        return value

    parse.__name__ = "integer"
    return parse


def number(minimum: Optional[float] = None, maximum: Optional[float] = None,
           what: str = "a number") -> Callable[[str], float]:
    """A parser of finite numbers in [minimum, maximum]; `what` ends its message
    ("1.5 is not a sampling rate (0 to 1)")."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise BadValue(f"{text!r} is not {what}") from None
        if value != value or value in (float("inf"), float("-inf")) or (
                (minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
            raise BadValue(f"{text} is not {what}")
        return value

    parse.__name__ = "number"
    return parse


positive_int = integer(1, what="a positive number")
port = integer(0, 65535, what="a port (0-65535)")


_SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def byte_size(text: str) -> int:
    """`20G`, `512M`, `1.5GiB`, `20GB` -> bytes; the units are powers of 1024 (as docker's
    --memory and `free -g`), the B and iB spellings the same."""
    value = text.strip().lower()
    for suffix in ("ib", "b"):
        if value.endswith(suffix) and value[:-len(suffix)][-1:] in "kmgt":
            value = value[:-len(suffix)]
            break
    unit = value[-1:] if value[-1:] in "kmgt" else ""
    try:
        number = float(value[:len(value) - len(unit)])
    except ValueError:
        raise BadValue(f"{text!r} is not a size (e.g. 20G, 512M, 1.5GiB)") from None
    if not number > 0 or number == float("inf"):
        raise BadValue(f"{text!r} is not a positive size")
    return int(number * _SIZE_UNITS[unit])


def key_values(text: str) -> Dict[str, str]:
    """`team=recsys,env=prod` -> {"team": "recsys", "env": "prod"}."""
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadValue(f"{item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def assignment(parse_value: Callable[[str], Any], form: str) -> Callable[[str], Tuple[str, Any]]:
    """A parser of `NAME=VALUE` into (NAME, parse_value(VALUE)); `form` ("METRIC=NUMBER") is what
    its message asks for."""

    def parse(text: str) -> Tuple[str, Any]:
        name, sep, value = text.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError(form)
            return name.strip(), parse_value(value)
        except ValueError:
            raise BadValue(f"{text!r} is not {form}") from None

    parse.__name__ = "assignment"
    return parse


def json_or_text(text: str) -> Any:
    """JSON (3, 0.5, true, [1, 2]) or, failing that, the text itself (mixed)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
