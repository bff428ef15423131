from pathlib import Path

import numpy as np
import pandas as pd
import pytest

RAW = Path(__file__).resolve().parents[2] / "data" / "raw"


def make_bars(close, start="2024-01-01", high=None, low=None, open_=None, volume=None, timestamps=None):
    """Bars from a close path: open = previous close unless given, high/low = max/min(open, close) unless
    given."""
    close = np.asarray(close, dtype=np.float64)
    n = len(close)
    open_ = np.r_[close[0], close[:-1]] if open_ is None else np.asarray(open_, dtype=np.float64)
    high = np.maximum(open_, close) if high is None else np.asarray(high, dtype=np.float64)
    low = np.minimum(open_, close) if low is None else np.asarray(low, dtype=np.float64)
    volume = np.ones(n) if volume is None else np.asarray(volume, dtype=np.float64)
    ts = pd.date_range(start, periods=n, freq="h", tz="UTC") if timestamps is None else timestamps
    return pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex(ts).as_unit("ns"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


def randomise_after(bars: pd.DataFrame, t: int, seed: int) -> pd.DataFrame:
    """Same timestamps; every bar after row t replaced by a random (valid) OHLCV bar."""
    rng = np.random.default_rng(seed)
    out = bars.copy()
    k = len(out) - t - 1
    base = float(out["close"].iloc[t])
    close = base * np.exp(np.cumsum(rng.normal(0, 0.02, k)))
    open_ = close * np.exp(rng.normal(0, 0.01, k))
    out.loc[out.index[t + 1 :], "open"] = open_
    out.loc[out.index[t + 1 :], "close"] = close
    out.loc[out.index[t + 1 :], "high"] = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, k))
    out.loc[out.index[t + 1 :], "low"] = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, k))
    out.loc[out.index[t + 1 :], "volume"] = rng.uniform(0, 1000, k)
    return out


@pytest.fixture(scope="session")
def raw_bars():
    """Real demo bars (first 2,500 rows: include the 2023-03-24 halt at row 1980 and the one-bar gap after
    it)."""
    return {
        s: pd.read_parquet(RAW / f"{s}_1h.parquet").iloc[:2500].reset_index(drop=True)
        for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    }
