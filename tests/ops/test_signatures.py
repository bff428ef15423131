"""workflow_scripts/ops/signatures.py: Snakemake finds the stored signatures without `inspect`, and passes the
same arguments as with the inspected ones."""

from __future__ import annotations

import inspect

import pytest
from snakemake.common import get_function_params, get_input_function_aux_params
from snakemake.resources import Resource

from workflow_scripts.ops.signatures import presigned, store_resource_signature


def kinds(params):
    return [(name, p.kind) for name, p in params.items()]


def no_inspect(*args, **kwargs):
    raise AssertionError("inspect.signature was called")


def test_the_resource_signature_is_found_without_inspect_and_is_the_inspected_one(monkeypatch):
    inspected = inspect.signature(Resource("mem_mb", 1000).evaluate).parameters
    assert kinds(inspected) == [
        ("args", inspect.Parameter.VAR_POSITIONAL),
        ("kwargs", inspect.Parameter.VAR_KEYWORD),
    ]
    assert store_resource_signature() is True
    assert store_resource_signature() is True  # a second store (every Snakemake parse) changes nothing
    monkeypatch.setattr(inspect, "signature", no_inspect)
    for resource in (Resource("mem_mb", 1000), Resource("runtime", lambda wildcards, attempt: 30 * attempt)):
        assert kinds(get_function_params(resource.evaluate)) == kinds(inspected)


def test_a_resource_gets_the_same_arguments_and_value_as_before():
    store_resource_signature()
    candidates = {"input": [], "attempt": 2, "threads": 4, "rulename": "train_stage1"}
    evaluate = Resource("runtime", lambda wildcards, attempt: 30 * attempt).evaluate
    assert get_input_function_aux_params(evaluate, candidates) == candidates  # **kwargs takes them all
    assert evaluate({"symbol": "BTCUSDT"}, **candidates).value == 60
    assert Resource("mem_mb", 4000).evaluate({}, **candidates).value == 4000


def test_without_the_snakemake_names_nothing_is_stored(monkeypatch):
    monkeypatch.delattr(Resource, "evaluate")
    assert store_resource_signature() is False


def test_a_presigned_function_is_found_without_inspecting_its_code(monkeypatch):
    def runtime(wildcards, attempt):
        return 30 * attempt

    fn = presigned(runtime)
    monkeypatch.setattr(inspect, "_signature_from_function", no_inspect)
    assert list(get_function_params(fn)) == ["wildcards", "attempt"]
    assert get_input_function_aux_params(fn, {"attempt": 1, "input": []}) == {"attempt": 1}

    def unsigned(wildcards, attempt):
        return 30 * attempt

    with pytest.raises(AssertionError, match="inspect.signature was called"):
        get_function_params(unsigned)  # without the store, the code is read
