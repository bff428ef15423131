"""Data-quality checks at ingest, fit for many coins: implausible jumps, prices that change scale for a
stretch, long flat stretches and delisting-like endings (settings: config/ingest, docs/CONFIG.md).

Each check reads one symbol's normalised bars (docs/CONTRACTS.md: hourly, UTC candle open time, sorted,
unique) and returns findings. A finding names the check, the symbol, the bars (ISO timestamps, UTC) and rows,
the value and the limit of the rule it broke, and the rule in words. Per check, `action` says what a finding
does: `warn` records it in results/ingest/{SYMBOL}.quality.json and the report and ingest goes on; `stop` ends
the ingest job with an error naming the file, the rows and the rule, before any output is written.

Causal: a bar's return is judged against the robust volatility of the bars before it, never after.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CHECKS = ("jump", "scale", "flat", "ending")
ACTIONS = ("warn", "stop")
BAR = pd.Timedelta(hours=1)
MAD_TO_SIGMA = 1.4826  # a normal's sigma per median absolute deviation
MAX_LISTED = 100  # findings listed per check and symbol; the count is always complete


def _finding(check, symbol, timestamps, rows, value, limit, rule) -> dict:
    return {
        "check": check,
        "symbol": symbol,
        "bars": [pd.Timestamp(t).isoformat() for t in timestamps],
        "rows": [int(r) for r in rows],
        "value": float(value),
        "limit": float(limit),
        "rule": rule,
    }


def robust_sigma(returns: np.ndarray, window: int, min_history: int) -> np.ndarray:
    """Per bar, 1.4826 x the median absolute log return of the `window` returns BEFORE it (at least
    `min_history` of them, else NaN): a volatility that a few extreme bars do not move, known before the bar.
    The median is taken about zero, the centre of hourly returns."""
    history = pd.Series(np.abs(returns)).rolling(window, min_periods=min_history).median()
    return MAD_TO_SIGMA * history.shift(1).to_numpy()


def bar_returns(bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Close-to-close log returns (NaN for the first bar) and the bars each one spans (> 1 across a gap)."""
    log_close = np.log(bars["close"].to_numpy())
    returns = np.r_[np.nan, np.diff(log_close)]
    steps = (bars["timestamp"].diff() / BAR).to_numpy(dtype=float)
    return returns, steps


def jump_findings(bars: pd.DataFrame, symbol: str, spec: dict, row_offset: int = 0) -> list[dict]:
    """Bars whose log return, per sqrt(bars spanned) so a gap is not a jump, exceeds `max_sigmas` times the
    trailing robust sigma (floored at `min_sigma`); the first `min_history_bars` bars are not judged."""
    returns, steps = bar_returns(bars)
    per_bar = returns / np.sqrt(steps)
    sigma = np.maximum(
        robust_sigma(per_bar, spec["window_bars"], spec["min_history_bars"]), spec["min_sigma"]
    )
    with np.errstate(invalid="ignore"):
        z = np.abs(per_bar) / sigma  # NaN while the history is short: not judged
        hits = np.flatnonzero(z > spec["max_sigmas"])
    ts = bars["timestamp"]
    return [
        _finding(
            "jump",
            symbol,
            [ts.iloc[i - 1], ts.iloc[i]],
            [row_offset + i - 1, row_offset + i],
            z[i],
            spec["max_sigmas"],
            f"log return {returns[i]:+.4f} at {ts.iloc[i].isoformat()} is {z[i]:.1f} robust sigmas (sigma "
            f"{sigma[i]:.5f} per bar from the {spec['window_bars']} bars before); limit "
            f"ingest.jump.max_sigmas={spec['max_sigmas']:g}",
        )
        for i in hits
    ]


def scale_findings(bars: pd.DataFrame, symbol: str, spec: dict, row_offset: int = 0) -> list[dict]:
    """Stretches quoted at another scale: a move by a factor >= `min_factor` (either way) that a move the
    other way undoes within `max_bars` rows, to within `revert_tolerance` of the first move's log size (a
    price quoted x100 for some bars, or one bad print). Reports the stretch: first to last bar at the other
    scale."""
    returns, _ = bar_returns(bars)
    with np.errstate(invalid="ignore"):
        big = np.flatnonzero(np.abs(returns) >= np.log(spec["min_factor"]))
    ts, out, taken = bars["timestamp"], [], -1
    for k, i in enumerate(big):
        if i <= taken:
            continue
        for j in big[k + 1 :]:
            if j - i > spec["max_bars"]:
                break
            if np.sign(returns[j]) != np.sign(returns[i]) and abs(returns[i] + returns[j]) <= spec[
                "revert_tolerance"
            ] * abs(returns[i]):
                factor = float(np.exp(returns[i]))
                out.append(
                    _finding(
                        "scale",
                        symbol,
                        [ts.iloc[i], ts.iloc[j - 1]],
                        [row_offset + i, row_offset + j - 1],
                        factor,
                        spec["min_factor"],
                        f"close moved x{factor:.4g} at {ts.iloc[i].isoformat()} and back x"
                        f"{float(np.exp(returns[j])):.4g} at {ts.iloc[j].isoformat()}, {j - i} rows later: "
                        f"{j - i} bar(s) at another scale (ingest.scale.min_factor={spec['min_factor']:g}, "
                        f"max_bars={spec['max_bars']})",
                    )
                )
                taken = j
                break
    return out


def flat_mask(bars: pd.DataFrame) -> np.ndarray:
    """A flat bar: its close equals the previous bar's close, or it traded nothing (volume 0)."""
    close = bars["close"].to_numpy()
    unchanged = np.r_[False, close[1:] == close[:-1]]
    return unchanged | (bars["volume"].to_numpy() == 0)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[first, last] positions of each run of True."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def flat_findings(bars: pd.DataFrame, symbol: str, spec: dict, row_offset: int = 0) -> list[dict]:
    """Runs of at least `min_bars` flat bars (flat_mask): a halted or dead market, or a filled feed."""
    ts = bars["timestamp"]
    return [
        _finding(
            "flat",
            symbol,
            [ts.iloc[a], ts.iloc[b]],
            [row_offset + a, row_offset + b],
            b - a + 1,
            spec["min_bars"],
            f"{b - a + 1} flat bars in a row (close unchanged or volume 0) from {ts.iloc[a].isoformat()} to "
            f"{ts.iloc[b].isoformat()}; limit ingest.flat.min_bars={spec['min_bars']}",
        )
        for a, b in runs(flat_mask(bars))
        if b - a + 1 >= spec["min_bars"]
    ]


def ending_findings(
    bars: pd.DataFrame, symbol: str, spec: dict, end: str | None, row_offset: int = 0
) -> list[dict]:
    """A delisting-like ending seen from one coin: the series ends more than `max_bars` bars before the
    configured span end (when there is one), or it ends in a flat stretch of at least `flat_bars` bars.
    Ending well before the other coins' data end is a cross-coin question: `universe_endings`."""
    ts, n, out = bars["timestamp"], len(bars), []
    last = ts.iloc[-1]
    if end:
        expected = pd.Timestamp(end, tz="UTC") - BAR  # the last bar of [start, end)
        behind = int((expected - last) / BAR)
        if behind > spec["max_bars"]:
            out.append(
                _finding(
                    "ending",
                    symbol,
                    [last],
                    [row_offset + n - 1],
                    behind,
                    spec["max_bars"],
                    f"last bar {last.isoformat()} is {behind} bars before the configured end {end} "
                    f"(env.data.end); limit ingest.ending.max_bars={spec['max_bars']}",
                )
            )
    tail = runs(flat_mask(bars))
    if tail and tail[-1][1] == n - 1 and n - tail[-1][0] >= spec["flat_bars"]:
        a = tail[-1][0]
        out.append(
            _finding(
                "ending",
                symbol,
                [ts.iloc[a], last],
                [row_offset + a, row_offset + n - 1],
                n - a,
                spec["flat_bars"],
                f"the series ends in {n - a} flat bars (close unchanged or volume 0) from "
                f"{ts.iloc[a].isoformat()}; limit ingest.ending.flat_bars={spec['flat_bars']}",
            )
        )
    return out


def check_bars(
    bars: pd.DataFrame, symbol: str, spec: dict, end: str | None = None, row_offset: int = 0
) -> dict:
    """Every check on one symbol's bars: {"checks": {check: {action, count, settings}}, "findings": [...]}.
    `spec` is the ingest group (config/ingest); `row_offset` turns positions into rows of the raw file."""
    found = {
        "jump": jump_findings(bars, symbol, spec["jump"], row_offset),
        "scale": scale_findings(bars, symbol, spec["scale"], row_offset),
        "flat": flat_findings(bars, symbol, spec["flat"], row_offset),
        "ending": ending_findings(bars, symbol, spec["ending"], end, row_offset),
    }
    checks = {
        name: {
            "action": spec[name]["action"],
            "count": len(found[name]),
            "settings": {k: v for k, v in spec[name].items() if k != "action"},
        }
        for name in CHECKS
    }
    listed = [f | {"action": spec[name]["action"]} for name in CHECKS for f in found[name][:MAX_LISTED]]
    return {"checks": checks, "findings": listed}


def stopping(result: dict) -> list[dict]:
    """The findings of checks whose action is `stop`."""
    return [f for f in result["findings"] if f["action"] == "stop"]


def stop_message(source: str, stops: list[dict], counts: dict) -> str:
    """One line: the file, how many findings stop ingest per check, the first one's rows, bars and rule."""
    first = stops[0]
    per_check = ", ".join(f"{c}: {counts[c]}" for c in CHECKS if any(f["check"] == c for f in stops))
    rows = "-".join(str(r) for r in dict.fromkeys(first["rows"]))
    return (
        f"{source}: data-quality check failed (action stop; {per_check} finding(s)); first: {first['check']} "
        f"at row(s) {rows} ({' to '.join(first['bars'])}): {first['rule']}. Fix the data, or set "
        f"ingest.{first['check']}.action=warn to record such findings and go on"
    )


def universe_endings(last_bars: dict[str, str], max_bars: dict[str, int]) -> list[dict]:
    """Delisting-like endings across coins: symbols whose last bar is more than their `max_bars` bars before
    the latest last bar of the universe (`last_bars`: symbol -> ISO timestamp). Read from the quality files by
    the report: ingest sees one coin only, and giving it the others' files would rerun every coin's ingest
    when one coin is added."""
    if not last_bars:
        return []
    last = {s: pd.Timestamp(t) for s, t in last_bars.items()}
    latest = max(last.values())
    out = []
    for sym, t in sorted(last.items()):
        behind = int((latest - t) / BAR)
        if behind > max_bars[sym]:
            out.append(
                _finding(
                    "ending",
                    sym,
                    [t],
                    [],
                    behind,
                    max_bars[sym],
                    f"last bar {t.isoformat()} is {behind} bars before the universe's last bar "
                    f"{latest.isoformat()}; limit ingest.ending.max_bars={max_bars[sym]}",
                )
            )
    return out
