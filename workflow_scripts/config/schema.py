"""The one config loader: Hydra composes `config/`, typed models check it once, the workflow gets plain dicts.

Snakemake passes its own `--config` dictionary in; the keys it may hold are the group choices
(`env=staging`, `universe=majors`, ...) and `overrides`, a list of Hydra dotted overrides. Anything else, an
unknown key, a missing key, a value of the wrong type or out of range stops the run at start-up with a
ConfigError naming the key and what is allowed (docs/CONFIG.md). Defaults live only in the YAML (`config/`).
"""

from __future__ import annotations

import functools
import json
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from workflow_scripts.config.models import (
    CONFIG_DIR,
    ENCODER_KINDS,
    SYMBOL_PATTERN,
    WorkflowConfig,
)
from workflow_scripts.models.kinds import TRAINABLE as MODEL_KINDS

__all__ = [
    "CONFIG_DIR",
    "ConfigError",
    "ENCODER_KINDS",
    "GROUPS",
    "MODEL_KINDS",
    "SNAKEMAKE_KEYS",
    "SYMBOL_PATTERN",
    "WorkflowConfig",
    "compose",
    "config_group",
    "describe",
    "overrides_from_snakemake",
]

GROUPS = tuple(WorkflowConfig.model_fields)
SNAKEMAKE_KEYS = GROUPS + ("overrides",)


class ConfigError(ValueError):
    """A configuration problem, with the key and what is allowed in the message."""


# ---- loading -----------------------------------------------------------------------------------------------
def overrides_from_snakemake(smk_config: dict) -> list[str]:
    """Turn Snakemake's `--config` dict into Hydra overrides; unknown keys are refused."""
    unknown = sorted(set(smk_config) - set(SNAKEMAKE_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown --config key(s) {unknown}; allowed: {', '.join(SNAKEMAKE_KEYS)} "
            '(group choices such as env=staging, or overrides=["group.key=value", ...])'
        )
    overrides = [f"{group}={smk_config[group]}" for group in GROUPS if group in smk_config]
    extra = smk_config.get("overrides", [])
    if isinstance(extra, str):
        extra = [extra]
    if not isinstance(extra, (list, tuple)) or not all(isinstance(o, str) for o in extra):
        raise ConfigError(f"--config overrides must be a list of 'group.key=value' strings, got {extra!r}")
    return overrides + list(extra)


def compose(overrides: list[str] | None = None, config_dir: Path = CONFIG_DIR) -> dict:
    """Compose with Hydra, validate once with the typed models; a plain dict (lists and dicts only)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    overrides = list(overrides or [])
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            composed = hydra_compose(config_name="config", overrides=overrides)
        raw = OmegaConf.to_container(composed, resolve=True)
    except Exception as exc:  # Hydra's own errors already name the key and the options
        raise ConfigError(f"configuration could not be composed from {config_dir}: {exc}") from exc
    finally:
        GlobalHydra.instance().clear()
    try:
        typed = WorkflowConfig.model_validate(raw, context={"config_dir": str(config_dir)})
    except ValidationError as exc:
        raise ConfigError("\n".join(describe(err) for err in exc.errors())) from None
    return typed.model_dump()


@functools.cache
def _composed_group(group: str, option: str | None) -> str:
    section = dict(compose([f"{group}={option}"] if option else [])[group])
    section.pop("name", None)  # Hydra's group label, not a setting
    return json.dumps(section)


def config_group(group: str, option: str | None = None) -> dict:
    """One group of the composed, validated config (default option unless named), for code outside a run.

    The YAML group files are the one home of the defaults: tests and benchmarks read them through this instead
    of keeping copies in the code.
    """
    return json.loads(_composed_group(group, option))


# ---- error messages ----------------------------------------------------------------------------------------
_KINDS = {"model": MODEL_KINDS, "encoder": ENCODER_KINDS}
_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}
_TYPE_ERRORS = {
    "int_type": int,
    "int_parsing": int,
    "int_from_float": int,
    "float_type": float,
    "float_parsing": float,
    "bool_type": bool,
    "bool_parsing": bool,
    "string_type": str,
    "list_type": list,
    "dict_type": dict,
    "model_type": dict,
    "model_attributes_type": dict,
}
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_FIELD_ERRORS = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "string_pattern_mismatch",
    *_TYPE_ERRORS,
}


def describe(err: dict) -> str:
    """One pydantic error as one line: `config key '<dotted.key>': expected <what is allowed>, got <value>`"""
    key, field, parent = _locate(err["loc"])
    kind, ctx, got = err["type"], err.get("ctx", {}), err["input"]
    if kind == "extra_forbidden":
        allowed = ", ".join(parent.model_fields if parent else ())
        return f"config key '{key}': unknown key; allowed here: {allowed}"
    if kind == "missing":
        return f"config key '{key}': missing; set it in the YAML under config/ (the only home of defaults)"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        key, got = f"{key}.kind", got.get("kind") if isinstance(got, dict) else got
        expected = "one of " + ", ".join(repr(k) for k in _KINDS[key.split(".")[0]])
    elif kind == "value_error":  # raised by a validator of config/models.py with what is allowed
        expected = err["msg"].removeprefix("Value error, ")
    elif kind == "literal_error":
        expected = ctx["expected"]
    elif kind == "too_short":
        expected = f"at least {ctx['min_length']} item(s)"
    elif kind == "too_long":
        expected = f"at most {ctx['max_length']} item(s)"
    elif kind in _FIELD_ERRORS and field is not None:
        expected = _allowed(field)
    else:
        expected = err["msg"]
    return f"config key '{key}': expected {expected}, got {_short(got)}"


def _locate(loc: tuple) -> tuple[str, FieldInfo | None, type[BaseModel] | None]:
    """The dotted key of an error location, its field (type and bounds) and the model holding it. A union
    member's tag (the group's `kind`) is part of pydantic's location, not of the key."""
    key, cls, field, parent = "", WorkflowConfig, None, None
    for part in loc:
        members = [m for m in get_args(cls) if isinstance(m, type) and issubclass(m, BaseModel)]
        tagged = [m for m in members if part in get_args(m.model_fields["kind"].annotation)]
        if tagged:
            cls = tagged[0]
            continue
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else part
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            parent, field = cls, cls.model_fields.get(part)
        elif get_origin(cls) in (list, dict):  # an item: X of list[X] / dict[str, X]
            parent, field = None, FieldInfo.from_annotation(get_args(cls)[-1])
        else:
            parent, field = None, None
        cls = field.annotation if field is not None else None
    return key, field, parent


def _allowed(field: FieldInfo) -> str:
    """What a field allows, from its type, Field(gt/ge/lt/le) bounds and pattern: 'a number in (0, 1]',
    'an integer >= 1 or null'."""
    ann = field.annotation
    optional = get_origin(ann) in (Union, types.UnionType) and type(None) in get_args(ann)
    base = next(a for a in get_args(ann) if a is not type(None)) if optional else ann
    text = _WORDS.get(get_origin(base) or base, "a value")
    bounds = {op: getattr(m, op) for m in field.metadata for op in _BOUNDS if hasattr(m, op)}
    lo, hi = ("gt" if "gt" in bounds else "ge"), ("lt" if "lt" in bounds else "le")
    if lo in bounds and hi in bounds:
        text += f" in {'(' if lo == 'gt' else '['}{bounds[lo]}, {bounds[hi]}{')' if hi == 'lt' else ']'}"
    else:
        text += "".join(f" {_BOUNDS[op]} {v}" for op, v in bounds.items())
    pattern = next((m.pattern for m in field.metadata if getattr(m, "pattern", None)), None)
    return text + (f" matching {pattern}" if pattern else "") + (" or null" if optional else "")


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
