"""The warm start's validation search (benchmarks/warm_start.py) on generated data: its chains
start and end as the Trainer's do, and a span that trains cold counts as the cold model."""

import re

from benchmarks import warm_start as search


def test_chains_end_as_the_trainers_do_and_a_cold_span_is_the_cold_model(tmp_path, write_fake_asos, capsys):
    write_fake_asos(str(tmp_path), num_users=300, num_products=80, tastes=4)
    settings = ['{}', '{"chain_ends": false}', '{"warm_start_max_chain": 1}']
    assert search.main(["--data-dir", str(tmp_path), "--spans", "4", "--window", "3", "--seeds", "42",
                        *[arg for setting in settings for arg in ("--warm", setting)]]) == 0
    out = capsys.readouterr().out
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in out.splitlines()
            if line.startswith("| 42 |")]
    warm = {setting: [int(row[1]) for row in rows if row[3] == f"warm {setting}"] for setting in settings}
    # span 3's window (spans 1-3) holds all that span 2's warm-started model trained on: the
    # default ends the chain there and trains cold; span 4 warm-starts from that cold model
    assert warm == {'{}': [2, 4], '{"chain_ends": false}': [2, 3, 4], '{"warm_start_max_chain": 1}': [2, 4]}
    assert [int(row[1]) for row in rows if row[3] == "cold"] == [1, 2, 3, 4]
    summary = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| {")}
    cells = [cell.strip() for cell in summary['{}'].split("|")[2:-1]]
    assert re.fullmatch(r"\+0\.0000 \(± 0\.0000; bar 0\.\d{4}; time 1\.00\)", cells[1]), cells  # span 3: the cold model
    assert not summary['{"chain_ends": false}'].split("|")[3].strip().startswith("+0.0000 (± 0.0000")
