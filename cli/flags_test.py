"""One declaration, two ways a value is parsed: argparse for a flag alone (usage, one error line,
exit code 2), `resolve` for a flag with a variable (flag > variable > default, FlagError naming
both); and the shared parsers' answers and messages."""

import argparse

import pytest

from cli import flags
from cli.flags import Flag

PORT = Flag("--rest_api_port", "REST port", aliases=("--rest-port",), parse=flags.port)
WORKERS = Flag("--workers", "workers", env="TEST_WORKERS", parse=flags.positive_int, default=4)
NAME = Flag("--name", "the name, required", env="TEST_NAME", required=True)
ON = Flag("--on", "a toggle", env="TEST_ON", kind=flags.TOGGLE, parse=flags.boolean, default=True)
LABELS = Flag("--label", "labels", env="TEST_LABELS", dest="labels", kind=flags.REPEAT,
              parse=flags.key_values, default={})
BOUND = Flag("--bound", "bounds", kind=flags.REPEAT, parse=flags.assignment(float, "METRIC=NUMBER"))
BATCHING = Flag("--enable_batching", "batching", kind=flags.OPTIONAL, parse=flags.boolean, default=True)
ALL = (PORT, WORKERS, NAME, ON, LABELS, BOUND, BATCHING)


def _parse(argv, environ=None):
    p = argparse.ArgumentParser(prog="prog")
    flags.add(p, ALL)
    return flags.resolve(p.parse_args(argv), ALL, environ or {})


def test_flag_then_variable_then_default():
    values = _parse(["--name", "a"])
    assert values == {"rest_api_port": None, "workers": 4, "name": "a", "on": True, "labels": {},
                      "bound": [], "enable_batching": True}
    values = _parse(["--rest-port", "0", "--workers", "2", "--no-on", "--label", "a=1,b=2", "--label", "c=3",
                     "--bound", "recall=0.5", "--enable_batching=false"],
                    {"TEST_NAME": "from-env", "TEST_WORKERS": "9", "TEST_ON": "true"})
    assert values == {"rest_api_port": 0, "workers": 2, "name": "from-env", "on": False,
                      "labels": {"a": "1", "b": "2", "c": "3"}, "bound": [("recall", 0.5)],
                      "enable_batching": False}
    assert _parse([], {"TEST_NAME": "n", "TEST_WORKERS": " 9 ", "TEST_LABELS": "x=y"})["labels"] == {"x": "y"}
    assert _parse(["--enable_batching"], {"TEST_NAME": "n"})["enable_batching"] is True
    assert LABELS.default == {}  # resolve hands out copies


@pytest.mark.parametrize("argv, environ, message", [
    ([], {}, "missing required setting: the name (pass --name or set TEST_NAME)"),
    (["--name", "n", "--workers", "0"], {}, "bad value for --workers or TEST_WORKERS: 0 is not a positive number"),
    (["--name", "n"], {"TEST_WORKERS": "many"}, "bad value for --workers or TEST_WORKERS: 'many' is not a positive"),
    (["--name", "n"], {"TEST_ON": "maybe"}, "TEST_ON: 'maybe' is not a boolean (use 1/0, true/false)"),
    (["--name", "n", "--label", "nokey"], {}, "--label or TEST_LABELS: 'nokey' is not KEY=VALUE"),
])
def test_a_flag_with_a_variable_fails_in_one_line_naming_both(argv, environ, message):
    with pytest.raises(flags.FlagError) as e:
        _parse(argv, environ)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("argv, message", [
    (["--rest_api_port", "70000"], "argument --rest_api_port/--rest-port: 70000 is not a port (0-65535)"),
    (["--rest-port", "http"], "argument --rest_api_port/--rest-port: 'http' is not a port (0-65535)"),
    (["--bound", "recall"], "argument --bound: 'recall' is not METRIC=NUMBER"),
    (["--bound", "=0.5"], "argument --bound: '=0.5' is not METRIC=NUMBER"),
    (["--bound", "recall=high"], "argument --bound: 'recall=high' is not METRIC=NUMBER"),
    (["--enable_batching=sometimes"], "argument --enable_batching: 'sometimes' is not a boolean"),
])
def test_a_flag_alone_is_an_argparse_error(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        _parse(argv + ["--name", "n"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage: prog") and err[-1].startswith(f"prog: error: {message}"), err


def test_parsers():
    texts = ("1", "TRUE", " yes", "on", "0", "false", "No", "off")
    assert [flags.boolean(t) for t in texts] == [True] * 4 + [False] * 4
    with pytest.raises(flags.BadValue):
        flags.boolean("")
    workers = flags.integer(0, what="a number of workers (0: one per core)")
    assert workers("0") == 0
    with pytest.raises(ValueError, match=r"^-1 is not a number of workers \(0: one per core\)$"):
        workers("-1")
    assert flags.port("65535") == 65535 and flags.positive_int("7") == 7
    rate = flags.number(0, 1, what="a sampling rate (0 to 1)")
    assert [rate(t) for t in ("0", "0.25", "1")] == [0.0, 0.25, 1.0]
    for bad in ("1.5", "-0.1", "nan", "inf", "x"):
        with pytest.raises(flags.BadValue, match=r"is not a sampling rate \(0 to 1\)$"):
            rate(bad)
    assert flags.key_values("team=recsys, env = prod,") == {"team": "recsys", "env": "prod"}
    param = flags.assignment(flags.json_or_text, "FIELD=VALUE")
    assert [param(t) for t in ("epochs=3", " lr =0.5", "sampling=mixed", "on=true", "s=")] == [
        ("epochs", 3), ("lr", 0.5), ("sampling", "mixed"), ("on", True), ("s", "")]
    with pytest.raises(flags.BadValue, match="'epochs' is not FIELD=VALUE"):
        param("epochs")


def test_sizes_are_powers_of_1024():
    assert [flags.byte_size(t) for t in ("20G", "20GB", "20gib", "1.5G", "512M", "64k", "1000")] == [
        20 * 2**30, 20 * 2**30, 20 * 2**30, 3 * 2**29, 2**29, 2**16, 1000]
    for bad in ("", "G", "twenty", "-1G", "0", "nanG"):
        with pytest.raises(flags.BadValue, match="size"):
            flags.byte_size(bad)


def test_a_kind_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match="kind 'flag'"):
        Flag("--x", "x", kind="flag")
