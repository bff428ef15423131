import numpy as np
import pandas as pd
import pytest

from workflow_scripts.models import shared_encoder as enc


def _features(seed, n=300, p=8):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 2))
    X = np.column_stack([base @ rng.normal(size=2) + 0.1 * rng.normal(size=n) for _ in range(p)]).astype(
        np.float32
    )
    X[rng.random(size=X.shape) < 0.05] = np.nan
    df = pd.DataFrame(X, columns=[f"tech__c{i}" for i in range(p)])
    df.insert(0, "timestamp", pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))
    return df


def _fit_and_save(path, features, ranges, k=3):
    pooled = enc.training_rows(features, ranges)
    return enc.save_encoder(path, enc.fit_pca_encoder(pooled, n_components=k))


def test_encoder_sees_training_rows_only(tmp_path):
    feats = {"BTCUSDT": _features(1), "ETHUSDT": _features(2)}
    ranges = {"BTCUSDT": (0, 180), "ETHUSDT": (10, 200)}
    v1 = _fit_and_save(tmp_path / "a.json", feats, ranges)
    changed = {s: f.copy() for s, f in feats.items()}
    for s, (_, hi) in ranges.items():  # scramble every validation/test row
        changed[s].iloc[hi:, 1:] = (
            np.random.default_rng(9).normal(size=changed[s].iloc[hi:, 1:].shape) * 100
        ).astype(np.float32)
    v2 = _fit_and_save(tmp_path / "b.json", changed, ranges)
    assert v1 == v2 and (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    changed["BTCUSDT"].iloc[5, 1] = 1e3  # a training row does change it
    assert _fit_and_save(tmp_path / "c.json", changed, ranges) != v1


def test_roundtrip_transform_and_nan_handling(tmp_path):
    train = _features(3)
    e = enc.fit_pca_encoder(train, n_components=4)
    version = enc.save_encoder(tmp_path / "e.json", e)
    assert version == enc.encoder_version(tmp_path / "e.json") and len(version) == 64
    loaded = enc.load_encoder(tmp_path / "e.json")
    out = enc.transform(loaded, train)
    pd.testing.assert_frame_equal(out, enc.transform(e, train))
    assert list(out.columns) == ["shared__pca_000", "shared__pca_001", "shared__pca_002", "shared__pca_003"]
    assert out.dtypes.eq(np.float32).all() and np.isfinite(out.to_numpy()).all()
    # An all-NaN row sits at the training mean: projects to 0.
    nan_row = train.iloc[[0]].copy()
    nan_row.iloc[0, 1:] = np.nan
    assert np.allclose(enc.transform(e, nan_row).to_numpy(), 0)
    # Components orthonormal, variance ratios descending.
    assert np.allclose(e.components @ e.components.T, np.eye(4), atol=1e-8)
    assert np.all(np.diff(e.explained_variance_ratio) <= 1e-12)
    appended = enc.append_encoded(train, e)
    assert list(appended.columns)[-4:] == e.output_columns and len(appended) == len(train)


def test_training_range_is_the_intersection_of_windows():
    splits = [{"train": [0, 900]}, {"train": [0, 850]}, {"train": [3, 870]}]
    assert enc.training_range(splits) == (3, 850)
    with pytest.raises(ValueError):
        enc.training_range([{"train": [0, 10]}, {"train": [20, 30]}])


def test_all_coins_are_cut_at_one_common_timestamp():
    """Issue 14 item 9: two coins with unequal listing dates. Each coin's own train share would end the late
    coin's training rows months after the early coin's training end (inside its validation / test period);
    the pooled rows stop at the earliest training end over the coins instead."""
    early = _features(1, n=1000)  # listed 2024-01-01, hourly
    late = _features(2, n=700)
    late["timestamp"] = early["timestamp"].iloc[-700:].to_numpy()  # listed 300 bars later, same data end
    feats = {"AAAUSDT": early, "BBBUSDT": late}
    ranges = {"AAAUSDT": enc.training_range([{"train": [0, 600]}, {"train": [0, 580]}]), "BBBUSDT": (0, 420)}
    ends = {s: feats[s]["timestamp"].iloc[hi - 1] for s, (_, hi) in ranges.items()}
    cut = enc.training_cut(feats, ranges)
    assert cut == min(ends.values()) == early["timestamp"].iloc[579]  # the minimum over coins and windows
    assert ends["BBBUSDT"] > cut  # the late coin's own share would reach past it
    for s in feats:  # tag each row with its timestamp so the pooled rows can be traced back
        feats[s]["tech__c0"] = feats[s]["timestamp"].astype("int64").astype("float64")
    pooled = enc.training_rows(feats, ranges)
    stamps = pd.to_datetime(pooled["tech__c0"].astype("int64"), utc=True)
    assert (stamps <= cut).all()
    n_late = int((late["timestamp"].iloc[:420] <= cut).sum())
    assert len(pooled) == 580 + n_late and n_late == 280  # bars 300..579 of the early coin's clock
    # Scrambling the late coin's rows after the cut (its own "training" share) leaves the encoder unchanged.
    a = enc.fit_pca_encoder(enc.training_rows(feats, ranges), n_components=3)
    changed = {s: f.copy() for s, f in feats.items()}
    after = (changed["BBBUSDT"]["timestamp"] > cut).to_numpy()
    changed["BBBUSDT"].loc[after, "tech__c1"] = 1e6
    b = enc.fit_pca_encoder(enc.training_rows(changed, ranges), n_components=3)
    np.testing.assert_array_equal(a.components, b.components)
