"""The validation search behind the default model (benchmarks/tune.py) on generated data: the
rows its options ask for, the paired comparison with a row, and a row that does not exist."""

import pytest

from benchmarks import references, tune


def _tables(out):
    """{table title: {row label: {column: value}}} of the printed markdown tables."""
    tables, title, columns = {}, None, []
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if line.startswith("| model ("):
            title, columns = cells[0], cells[1:]
            tables[title] = {}
        elif title and cells and not line.startswith("|---"):
            tables[title][cells[0]] = dict(zip(columns, (float(c) for c in cells[1:])))
        elif not line.strip():
            title = None
    return tables


@pytest.fixture(scope="module")
def data(tmp_path_factory, write_fake_asos):
    path = str(tmp_path_factory.mktemp("asos"))
    write_fake_asos(path, num_users=200, num_products=60, tastes=4)
    return path


def test_the_rows_its_options_ask_for_compared_with_popularity(data, capsys):
    assert tune.main(["--data-dir", data, "--model", '{"epochs": 1}', "--norms", "sum", "--graph-weights", "0,2",
                      "--pop-weights", "0,1", "--pop-mix", "0,0.5", "--compare", "popularity",
                      "--heavy-at", "3"]) == 0
    tables = _tables(capsys.readouterr().out)
    assert len(tables) == 3  # the validation split, then its heavy users and the others
    rows = tables["model (validation split)"]
    model = 'model {"epochs": 1}'
    learned = [label for label in rows if label.startswith(model)]
    # 2 graph weights x 2 prior weights x 2 mixtures, each a row of its own
    assert sorted(learned) == sorted(
        f"{model} + {w} x sum graph" + (" + 1.0 x log popularity" if p else "")
        + (", mixed 0.5 with popularity" if m else "")
        for w in (0.0, 2.0) for p in (0, 1) for m in (0, 0.5))
    # the references: popularity, and RP3beta alone and blended with each weight tried
    assert set(rows) - set(learned) == {"popularity"} | {references.label(w) for w in tune.REFERENCE_WEIGHTS}
    # the paired difference from popularity: none for popularity itself; each row's own HitRate
    # minus popularity's for the others
    assert rows["popularity"]["HitRate@10 - popularity"] == 0 and rows["popularity"]["paired se"] == 0
    for label, values in rows.items():
        assert values["HitRate@10 - popularity"] == pytest.approx(
            values["HitRate@10"] - rows["popularity"]["HitRate@10"], abs=2e-4), label


def test_a_comparison_with_a_row_that_does_not_exist_is_named(data, capsys):
    with pytest.raises(SystemExit) as stopped:
        tune.main(["--data-dir", data, "--model", '{"epochs": 1}', "--norms", "sum", "--graph-weights", "0",
                   "--no-references", "--compare", "popularity"])
    assert stopped.value.code == 2
    assert "--compare popularity needs the references" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tune.main(["--data-dir", data, "--model", '{"epochs": 1}', "--norms", "sum", "--graph-weights", "0",
                   "--no-references", "--compare", "nosuch"])
    assert 'no such row; the rows: model {"epochs": 1} + 0.0 x sum graph' in capsys.readouterr().err
