"""Seed 004's trial codes for agent trials: `[TYPE]-[GRADE]-[ARCH]-[OPT]-[ENV]-[DATE]`, e.g.

    PPO-A-N1024B4K-L2E6G98-LB5TD20-20260214

TYPE    agent kind, upper case (PPO, SAC, TD3).
GRADE   the trial's grade on validation by the workflow's grades (config/grades: seed 004's after-cost Sharpe
        per trade table S >= 0.30, A >= 0.20, B >= 0.15, C >= 0.10, D >= 0.05, else F), and N (insufficient
        evidence) below the grades' minimum number of trades (evaluation/grades.py).
ARCH    N<net width>B<batch size>. A number that is a whole multiple of 1000 is written with K (4000 -> 4K),
        any other as its digits (1024 -> 1024): `B4K` is a batch of 4000, `N1024` a width of 1024.
OPT     L<m>E<e>G<g>: learning rate m * 10^-e (L2E6 = 2e-6, L25E5 = 2.5e-4: m is the shortest digit string,
        no trailing zero), gamma = 0.<g> (G98 = 0.98, G995 = 0.995; no trailing zero).
ENV     LB<lookback bars>TD<time decay in hundredths> (LB5TD20 = lookback 5, time decay 0.20).
DATE    training date YYYYMMDD (the workflow writes the last bar's date of the data: a rerun keeps the code).

Collisions: two trials with the same readable fields would get the same code. `assign_codes` keeps the plain
code for the first trial (in trial-number order) and gives every later one a 7th segment: 6 upper-case hex
digits of sha256 over that trial's identity (study, trial number, all parameters; evaluation/vin.py
`vin_suffix`), so a published code never changes when a later trial collides with it. `decode` accepts the
optional suffix."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from workflow_scripts.evaluation.grades import INSUFFICIENT
from workflow_scripts.evaluation.vin import vin_suffix

# Letters a trial code's GRADE may hold: seed 004's table, its fail grade and "insufficient evidence".
GRADES = ("S", "A", "B", "C", "D", "F", INSUFFICIENT)
FIELDS = (
    "type",
    "grade",
    "net_width",
    "batch_size",
    "learning_rate",
    "gamma",
    "lookback",
    "time_decay",
    "date",
)
_NUM = r"[1-9][0-9]*K?"
_CODE_RE = re.compile(
    rf"^(?P<type>[A-Z][A-Z0-9]{{0,11}})-(?P<grade>[{''.join(GRADES)}])"
    rf"-N(?P<net>{_NUM})B(?P<batch>{_NUM})"
    r"-L(?P<lr_m>[1-9][0-9]*)E(?P<lr_e>0|[1-9][0-9]*)G(?P<gamma>[0-9]*[1-9])"
    r"-LB(?P<lookback>[1-9][0-9]*)TD(?P<td>0|[1-9][0-9]*)"
    r"-(?P<date>[0-9]{8})(?:-(?P<suffix>[0-9A-F]{6}))?$"
)


class TrialCodeError(ValueError):
    pass


# ---- numbers -
def _count(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrialCodeError(f"trial code: {name} must be an integer >= 1, got {value!r}")
    return f"{value // 1000}K" if value % 1000 == 0 else str(value)


def _read_count(text: str) -> int:
    return int(text[:-1]) * 1000 if text.endswith("K") else int(text)


def _lookback(value: Any) -> str:
    _count(value, "lookback")  # validates
    return str(value)  # written as digits always: lookbacks are small bar counts


def _learning_rate(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise TrialCodeError(f"trial code: learning_rate must be in (0, 1], got {value!r}")
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    mantissa = int("".join(map(str, digits)))
    if exponent > 0:  # only 1.0 normalises to a positive exponent inside (0, 1]
        mantissa, exponent = mantissa * 10**exponent, 0
    return f"L{mantissa}E{-exponent}"


def _gamma(value: Any) -> str:
    text = repr(float(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    if not (0 < float(value or 0) < 1 and text.startswith("0.") and "e" not in text):
        raise TrialCodeError(f"trial code: gamma must be a decimal in (0, 1) like 0.98, got {value!r}")
    return f"G{text[2:]}"


def _time_decay(value: Any) -> str:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    hundredths = round(float(value) * 100) if ok else -1
    if not ok or abs(float(value) * 100 - hundredths) > 1e-9:
        raise TrialCodeError(f"trial code: time_decay must be a multiple of 0.01 >= 0, got {value!r}")
    return f"TD{hundredths}"


def _date(value: Any) -> str:
    text = str(value)
    try:
        dt.datetime.strptime(text, "%Y%m%d")
    except ValueError as exc:
        raise TrialCodeError(f"trial code: date must be YYYYMMDD, got {value!r}") from exc
    if not re.fullmatch(r"[0-9]{8}", text):
        raise TrialCodeError(f"trial code: date must be YYYYMMDD, got {value!r}")
    return text


# ---- public -
def encode(fields: Mapping[str, Any]) -> str:
    """{type, grade, net_width, batch_size, learning_rate, gamma, lookback, time_decay, date[, suffix]} ->
    code."""
    unknown = sorted(set(fields) - set(FIELDS) - {"suffix"})
    missing = [k for k in FIELDS if k not in fields]
    if unknown or missing:
        raise TrialCodeError(f"trial code: unknown field(s) {unknown}, missing field(s) {missing}")
    kind, grade = str(fields["type"]), str(fields["grade"])
    if not re.fullmatch(r"[A-Z][A-Z0-9]{0,11}", kind):
        raise TrialCodeError(f"trial code: type must be upper-case letters/digits, got {kind!r}")
    if grade not in GRADES:
        raise TrialCodeError(f"trial code: grade must be one of {list(GRADES)}, got {grade!r}")
    parts = [
        kind,
        grade,
        f"N{_count(fields['net_width'], 'net_width')}B{_count(fields['batch_size'], 'batch_size')}",
        _learning_rate(fields["learning_rate"]) + _gamma(fields["gamma"]),
        f"LB{_lookback(fields['lookback'])}{_time_decay(fields['time_decay'])}",
        _date(fields["date"]),
    ]
    suffix = fields.get("suffix")
    if suffix is not None:
        if not re.fullmatch(r"[0-9A-F]{6}", str(suffix)):
            raise TrialCodeError(f"trial code: suffix must be 6 upper-case hex digits, got {suffix!r}")
        parts.append(str(suffix))
    return "-".join(parts)


def decode(code: str) -> dict:
    """The inverse of `encode`: code -> fields (learning_rate, gamma, time_decay as floats; suffix if
    present)."""
    match = _CODE_RE.match(str(code))
    if match is None:
        raise TrialCodeError(
            f"trial code {code!r} is not TYPE-GRADE-N<w>B<b>-L<m>E<e>G<g>-LB<l>TD<t>-YYYYMMDD[-SUFFIX] "
            "(e.g. PPO-A-N1024B4K-L2E6G98-LB5TD20-20260214)"
        )
    g = match.groupdict()
    out = {
        "type": g["type"],
        "grade": g["grade"],
        "net_width": _read_count(g["net"]),
        "batch_size": _read_count(g["batch"]),
        "learning_rate": float(f"{g['lr_m']}e-{g['lr_e']}"),
        "gamma": float(f"0.{g['gamma']}"),
        "lookback": int(g["lookback"]),
        "time_decay": int(g["td"]) / 100,
        "date": _date(g["date"]),
    }
    plain = code[: -len("-XXXXXX")] if g["suffix"] else code
    if encode(out) != plain:  # e.g. B4000 for B4K, G980 for G98, L20E7 for L2E6: one code per trial
        raise TrialCodeError(f"trial code {code!r} is not in canonical form (it encodes as {encode(out)!r})")
    if g["suffix"]:
        out["suffix"] = g["suffix"]
    return out


def assign_codes(trials: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> list[str]:
    """Codes for (fields, identity) pairs in trial-number order: the first trial with a given plain code keeps
    it, later ones get `vin_suffix(identity)` appended (module docstring)."""
    seen: set[str] = set()
    codes = []
    for fields, identity in trials:
        plain = encode({k: v for k, v in fields.items() if k != "suffix"})
        code = plain if plain not in seen else encode(dict(fields) | {"suffix": vin_suffix(identity)})
        if code in seen:
            raise TrialCodeError(f"trial code {code!r}: two trials share the same identity")
        seen.update({plain, code})
        codes.append(code)
    return codes
