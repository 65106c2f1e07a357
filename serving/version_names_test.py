"""Version directory names as TF Serving reads them."""

from serving.version_names import MAX_VERSION, version_number


def test_digits_that_fit_in_int64_are_versions_and_nothing_else():
    assert version_number("1796012949") == 1796012949 and version_number("1796012949/") == 1796012949
    assert version_number("007") == 7 and version_number("0") == 0
    assert version_number(str(MAX_VERSION)) == MAX_VERSION
    for name in (str(MAX_VERSION + 1), "99999999999999999999", "²", "١٢", "-3", "+3", " 3", "3.0",
                 ".tmp-1796012949-ab12", "latest", ""):
        assert version_number(name) is None, name
