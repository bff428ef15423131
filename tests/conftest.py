from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "data" / "raw"


@pytest.fixture(scope="session")
def btc_bars() -> pd.DataFrame:
    """Real BTCUSDT hourly bars from the embedded demo data (2023 onwards)."""
    return pd.read_parquet(RAW / "BTCUSDT_1h.parquet")


def hourly(n: int, start: str = "2024-01-01") -> pd.Series:
    return pd.Series(pd.date_range(start, periods=n, freq="h", tz="UTC").astype("datetime64[ns, UTC]"))
