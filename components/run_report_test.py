"""The RunReport executor's output: report.json, the page, and the artifact's properties (the
figures: report_figures_test.py; the page: report_html_test.py)."""

import json
import os

from components import run_report
from components.report_html_test import _report


def test_the_report_is_written_as_json_and_html_with_its_headline_properties(tmp_path):
    report = _report()
    report["push"] = {"pushed": True, "version": "1700000000", "path": "/serving/1700000000",
                      "text": "Pushed: version 1700000000 at /serving/1700000000."}
    out = run_report.RunReportFile()
    out.uri = str(tmp_path)
    run_report._write(report, out)
    with open(os.path.join(tmp_path, run_report.JSON_FILE)) as f:
        assert json.load(f) == report
    with open(os.path.join(tmp_path, run_report.HTML_FILE)) as f:
        assert f.read().startswith("<!DOCTYPE html>")
    assert out.get_int_custom_property("blessed") == 0
    assert out.get_int_custom_property("pushed") == 1
    assert out.get_string_custom_property("pushed_version") == "1700000000"


def test_the_version_served_after_the_run_is_the_pushed_one_else_the_served_baseline():
    from tfx.types import standard_artifacts

    pushed, served = standard_artifacts.PushedModel(), standard_artifacts.Model()
    served.set_string_custom_property("served_version", "1796000100")
    served.set_int_custom_property("found", 1)
    assert run_report._served_version(None, served) == "1796000100"
    pushed.set_int_custom_property("pushed", 0)
    assert run_report._served_version(pushed, served) == "1796000100"  # refused: the served one stays
    pushed.set_int_custom_property("pushed", 1)
    pushed.set_string_custom_property("pushed_version", "1796000200")
    assert run_report._served_version(pushed, served) == "1796000200"
    assert run_report._served_version(None, None) is None  # nothing served
