"""Summary tables (results/*/summary.md): counts print as integers, metrics to four decimals."""

import pandas as pd

from workflow_scripts.evaluation.best_variant import to_markdown


def test_counts_print_as_integers_even_when_a_row_lacks_them():
    table = pd.DataFrame(
        {
            "symbol": ["BTCUSDT", "ETHUSDT"],
            "n_trades": [49, None],  # a missing count turns the column into floats
            "sharpe_per_trade": [0.1234567, 1.0],
            "gate_passed": [True, False],
        }
    )
    assert table["n_trades"].dtype == float
    assert to_markdown(table, "Chosen").splitlines()[4:] == [
        "| BTCUSDT | 49 | 0.1235 | True |",
        "| ETHUSDT |  | 1.0000 | False |",
    ]
