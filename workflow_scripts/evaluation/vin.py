"""VIN-style model codes (seed 004): TYPE-GRADE-ARCH-OPT-ENV-DATE-SUFFIX, human readable and decodable.

    LGBM-A-L31D5-E0p1A0p0-HBK1p5T0p5W10-20260214-3F9A1C

TYPE    model family, upper case letters/digits starting with a letter (LGBM).
GRADE   S, A, A+, A-, ... F with '+' spelled P and '-' spelled M (A- -> AM), since '-' separates segments.
        N = insufficient evidence (fewer after-cost trades than grades.min_trades; evaluation/grades.py):
        one letter, no '+'/'-', and not X (X spells an empty token segment).
ARCH    architecture tokens: L num_leaves, D max_depth, C min_child_samples, B max_bin.
OPT     optimiser tokens: E learning_rate, A lambda_l1, R lambda_l2, F feature_fraction, G bagging_fraction,
        N boosting rounds (best iteration).
ENV     target / window: side letter (H high, L low), kind letter (B breakout, R reversion), then K k (event
        std threshold), T theta (barrier), W window (bars), Z horizon (bars, optional).
DATE    training date YYYYMMDD (UTC).
SUFFIX  6 upper-case hex digits of sha256 over the model's full identity (symbol, target, window, all params,
        date): makes codes unique when two models share every readable field (for example two symbols).

Tokens are CODE + VALUE, codes upper case, values digits with lower-case 'p' for the decimal point, 'e' for
the exponent and 'm' for a minus sign (0.1 -> 0p1, 1e-06 -> 1em06, -1 -> m1). An integer is spelled without
'p' or 'e' and decodes as int; a float always has one (Python's repr) and decodes to the identical float.
Tokens are written in the fixed order above; a segment with no tokens is spelled X.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

ARCH_CODES = {"L": "num_leaves", "D": "max_depth", "C": "min_child_samples", "B": "max_bin"}
OPT_CODES = {
    "E": "learning_rate",
    "A": "lambda_l1",
    "R": "lambda_l2",
    "F": "feature_fraction",
    "G": "bagging_fraction",
    "N": "num_iterations",
}
ENV_CODES = {"K": "k", "T": "theta", "W": "window", "Z": "horizon"}
SIDES = {"H": "high", "L": "low"}
KINDS = {"B": "breakout", "R": "reversion"}
GRADES = ("S", "A+", "A", "A-", "B+", "B", "B-", "C", "D", "F", "N")  # N: insufficient evidence
EMPTY = "X"
_TYPE_RE = re.compile(r"^[A-Z][A-Z0-9]{0,11}$")
_TOKEN_RE = re.compile(r"([A-Z])(m?[0-9][0-9pem]*)")
_INT_RE = re.compile(r"^-?[0-9]+$")
_SUFFIX_RE = re.compile(r"^[0-9A-F]{6}$")


class VinError(ValueError):
    pass


# ---- numbers -----------------------------------------------------------------------------------------------
def _spell(value: Any, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise VinError(f"VIN field {key!r} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise VinError(f"VIN field {key!r} must be finite, got {value!r}")
    text = str(int(value)) if isinstance(value, int) else repr(float(value))
    return text.replace("+", "").replace("-", "m").replace(".", "p")


def _read(text: str) -> int | float:
    plain = text.replace("m", "-").replace("p", ".")
    return int(plain) if _INT_RE.match(plain) else float(plain)


def _encode_tokens(values: Mapping[str, Any], codes: Mapping[str, str], segment: str) -> str:
    by_name = {name: code for code, name in codes.items()}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise VinError(f"VIN {segment}: unknown field(s) {unknown}; encodable: {sorted(by_name)}")
    text = "".join(code + _spell(values[name], name) for code, name in codes.items() if name in values)
    return text or EMPTY


def _decode_tokens(text: str, codes: Mapping[str, str], segment: str) -> dict:
    if text == EMPTY:
        return {}
    tokens = _TOKEN_RE.findall(text)
    if "".join(c + v for c, v in tokens) != text:
        raise VinError(f"VIN {segment} segment {text!r} is not a sequence of CODE+value tokens")
    out: dict = {}
    order = list(codes)
    last = -1
    for code, value in tokens:
        if code not in codes:
            raise VinError(f"VIN {segment}: unknown code {code!r} in {text!r}; codes: {order}")
        if order.index(code) <= last:
            raise VinError(f"VIN {segment}: codes out of order or repeated in {text!r}")
        last = order.index(code)
        try:
            out[codes[code]] = _read(value)
        except ValueError as exc:
            raise VinError(f"VIN {segment}: bad number {value!r} in {text!r}") from exc
    return out


# ---- public ------------------------------------------------------------------------------------------------
def vin_suffix(identity: Mapping[str, Any]) -> str:
    """6 upper-case hex digits of sha256 over the canonical JSON of the model's identity."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:6].upper()


def encode_vin(fields: Mapping[str, Any]) -> str:
    """fields: {type, grade, arch: {...}, opt: {...}, env: {side, kind, k, theta, window[, horizon]}, date,
    suffix (optional)} -> code. Raises VinError naming the bad field."""
    known = {"type", "grade", "arch", "opt", "env", "date", "suffix"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise VinError(f"VIN: unknown field(s) {unknown}; allowed: {sorted(known)}")
    mtype = str(fields["type"])
    if not _TYPE_RE.match(mtype):
        raise VinError(f"VIN type must be upper-case letters/digits starting with a letter, got {mtype!r}")
    grade = str(fields["grade"])
    if grade not in GRADES:
        raise VinError(f"VIN grade must be one of {list(GRADES)}, got {grade!r}")
    env = dict(fields["env"])
    side, kind = env.pop("side", None), env.pop("kind", None)
    side_code = {v: k for k, v in SIDES.items()}.get(side)
    kind_code = {v: k for k, v in KINDS.items()}.get(kind)
    if side_code is None or kind_code is None:
        raise VinError(
            f"VIN env needs side in {list(SIDES.values())} and kind in {list(KINDS.values())}, "
            f"got {side!r}, {kind!r}"
        )
    date = str(fields["date"])
    try:
        dt.datetime.strptime(date, "%Y%m%d")
    except ValueError as exc:
        raise VinError(f"VIN date must be YYYYMMDD, got {date!r}") from exc
    if len(date) != 8:
        raise VinError(f"VIN date must be YYYYMMDD, got {date!r}")
    parts = [
        mtype,
        grade.replace("+", "P").replace("-", "M"),
        _encode_tokens(fields.get("arch") or {}, ARCH_CODES, "ARCH"),
        _encode_tokens(fields.get("opt") or {}, OPT_CODES, "OPT"),
        side_code + kind_code + _encode_tokens(env, ENV_CODES, "ENV").replace(EMPTY, ""),
        date,
    ]
    suffix = fields.get("suffix")
    if suffix is not None:
        if not _SUFFIX_RE.match(str(suffix)):
            raise VinError(f"VIN suffix must be 6 upper-case hex digits, got {suffix!r}")
        parts.append(str(suffix))
    return "-".join(parts)


def decode_vin(code: str) -> dict:
    """The inverse of encode_vin: code -> {type, grade, arch, opt, env, date[, suffix]}."""
    parts = str(code).split("-")
    if len(parts) not in (6, 7):
        raise VinError(
            f"VIN {code!r}: expected TYPE-GRADE-ARCH-OPT-ENV-DATE[-SUFFIX], got {len(parts)} segments"
        )
    mtype, grade_text, arch, opt, env_text, date = parts[:6]
    if not _TYPE_RE.match(mtype):
        raise VinError(f"VIN {code!r}: bad type {mtype!r}")
    grade = grade_text[:1] + grade_text[1:].replace("P", "+").replace("M", "-")
    if grade not in GRADES:
        raise VinError(f"VIN {code!r}: bad grade {grade_text!r}")
    if len(env_text) < 2 or env_text[0] not in SIDES or env_text[1] not in KINDS:
        raise VinError(f"VIN {code!r}: ENV must start with side (H/L) and kind (B/R), got {env_text!r}")
    env = {"side": SIDES[env_text[0]], "kind": KINDS[env_text[1]]}
    env.update(_decode_tokens(env_text[2:] or EMPTY, ENV_CODES, "ENV"))
    if not re.fullmatch(r"[0-9]{8}", date):
        raise VinError(f"VIN {code!r}: bad date {date!r}")
    out = {
        "type": mtype,
        "grade": grade,
        "arch": _decode_tokens(arch, ARCH_CODES, "ARCH"),
        "opt": _decode_tokens(opt, OPT_CODES, "OPT"),
        "env": env,
        "date": date,
    }
    if len(parts) == 7:
        if not _SUFFIX_RE.match(parts[6]):
            raise VinError(f"VIN {code!r}: bad suffix {parts[6]!r}")
        out["suffix"] = parts[6]
    return out


def vin_fields_for_lgbm(
    params: Mapping[str, Any],
    *,
    grade: str,
    target: Mapping[str, Any],
    window: int,
    date: str,
    identity: Mapping[str, Any] | None = None,
    best_iteration: int | None = None,
    model_type: str = "LGBM",
) -> dict:
    """Pick the VIN fields out of LightGBM params and a parsed target id ({side, type, k, theta}).

    `identity` (symbol, target id, window, params, date, model sha256 ...) feeds the unique suffix.
    """
    aliases = {
        "lambda_l1": ("lambda_l1", "reg_alpha"),
        "lambda_l2": ("lambda_l2", "reg_lambda"),
        "min_child_samples": ("min_child_samples", "min_data_in_leaf"),
        "learning_rate": ("learning_rate", "eta"),
    }

    def pick(names: Mapping[str, str]) -> dict:
        out = {}
        for name in names.values():
            for alias in aliases.get(name, (name,)):
                if alias in params:
                    out[name] = params[alias]
                    break
        return out

    opt = pick({k: v for k, v in OPT_CODES.items() if v != "num_iterations"})
    if best_iteration is not None:
        opt["num_iterations"] = int(best_iteration)
    env = {
        "side": target["side"],
        "kind": str(target["type"]).split("_")[1],
        "k": float(target["k"]),
        "theta": float(target["theta"]),
        "window": int(window),
    }
    fields = {
        "type": model_type,
        "grade": grade,
        "arch": pick(ARCH_CODES),
        "opt": opt,
        "env": env,
        "date": date,
    }
    if identity is not None:
        fields["suffix"] = vin_suffix(identity)
    return fields
