"""Eligibility to be champion reads validation only (docs/LIFECYCLE.md): a folder without validation evidence
(registered by hand, or written before evidence existed) never becomes champion through its gate of record,
which is a test-segment verdict; the reason says so."""

from __future__ import annotations

from workflow_scripts import artifacts
from workflow_scripts.config.schema import config_group
from workflow_scripts.registry import runs
from workflow_scripts.registry import store as reg

REASON = (
    "no validation evidence (validation_returns.json missing): the gate of record is a test-segment verdict "
    "and never makes a champion; retrain to get validation evidence"
)


def test_a_folder_without_validation_evidence_is_not_eligible(factory, tmp_path):
    registry = tmp_path / "registry"
    folder = factory.folder(gate_passed=True, validation=None)  # its test gate passed
    entry = reg.register(registry, folder, run="r1")
    assert entry["gate_passed"] is True and entry["validation"] is None
    assert reg.eligibility(entry) == (False, "exploratory", reg.NO_EVIDENCE)
    decision = reg.promote(registry, entry["vin"])  # the operator's path, no gate profile filter
    assert (decision["decision"], decision["reason"]) == ("rejected", REASON)
    spec = config_group("registry") | {"promote_gate_profiles": ["exploratory"]}
    [decision] = runs.decide(registry, [reg.get_entry(registry, entry["vin"])], spec, "r1")
    assert (decision["decision"], decision["reason"]) == ("rejected", REASON)
    assert reg.roster(registry) == [] and reg.get_entry(registry, entry["vin"])["status"] == "rejected"
    # with evidence whose validation verdict passed, the same kind of folder may compete
    other = reg.register(registry, factory.folder(gate_passed=True), run="r2")
    [decision] = runs.decide(registry, [other], spec, "r2")
    assert decision["decision"] == "champion" and decision["evidence"]["source"] == "validation"
    record = runs.decision_record(registry, [folder], spec)
    assert record["candidates"][0]["decision"] == {"decision": "rejected", "reason": REASON}
    text = artifacts.to_json_text(record)
    assert entry["vin"] not in text and other["vin"] not in text  # named by identity, not by VIN
    assert record["champions"] == {"BTCUSDT/high": runs.identity(other)}
