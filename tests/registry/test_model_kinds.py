"""The one model-kind table (models/kinds.py) and the folder contract's dispatch through it: a registered
ensemble folder loads its member folders with the same load_folder."""

import shutil

import numpy as np
import pytest

from workflow_scripts import artifacts
from workflow_scripts.models import ensembles, kinds
from workflow_scripts.models.folder import load_folder, read_model_meta, write_sha256


def test_the_table_answers_every_kind_question():
    assert kinds.TRAINABLE == ("lightgbm", "xgboost", "torch_mlp", "torch_transformer")
    assert kinds.MODEL_FILES == {
        "lightgbm": "model.txt",
        "xgboost": "model.json",
        "torchscript": "model.pt",
        "ensemble": "ensemble.json",
        "cnn_lstm": "cnn_lstm.pt",  # the RL line (docs/AGENTS.md, tests/agents)
        "agent": "policy.pt",
        "hybrid": "hybrid_policy.pt",
        "agent_ensemble": "agent_ensemble.json",
    }
    assert [k for k, v in kinds.KINDS.items() if v.uses_gpu] == ["torch_mlp", "torch_transformer"]
    assert kinds.kind_of("lgbm").name == "lightgbm" and kinds.kind_of("PT").model_type == "torchscript"
    assert kinds.KINDS["ensemble_stacker"].vin_type == "ENSSTK"
    with pytest.raises(KeyError, match="unknown model kind or type 'svm'"):
        kinds.kind_of("svm")


def test_an_ensemble_folder_loads_its_members_through_the_table(factory, tmp_path):
    members = {"w5": factory.folder(window=5), "w24": factory.folder(window=24, num_leaves=5)}
    folder = tmp_path / "ens"
    for name, src in members.items():
        shutil.copytree(src, folder / ensembles.MEMBERS_DIR / name)
    ens = ensembles.fit_average([{"name": n, "vin": read_model_meta(f)["vin"]} for n, f in members.items()])
    ensembles.save_ensemble(folder, ens)
    for name in (
        "config.json",
        "metrics.json",
        "costs.json",
        "features.json",
        "split_indices.json",
        "training_log.json",
    ):
        shutil.copy(members["w5"] / name, folder / name)
    config = artifacts.read_json(folder / "config.json")
    artifacts.write_json(folder / "config.json", config | {"model_type": "ensemble"})
    write_sha256(folder)

    loaded = load_folder(folder)
    frame = factory.features.iloc[100:160]
    expected = np.mean([load_folder(f).predict_proba(frame) for f in members.values()], axis=0)
    assert loaded.model_type == "ensemble"
    np.testing.assert_allclose(loaded.predict_proba(frame), expected, rtol=1e-12)
