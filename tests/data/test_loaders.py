"""grain loaders: layout, determinism, sharding, mixtures, evaluation padding, exact resume through Orbax."""

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from labram_jax.data import loaders
from labram_jax.data.mixture import proportions
from labram_jax.layout import patchify


def _records(n, channels=3, patches=2, offset=0, source_tag=0):
    """Records whose label is their index (+ offset): examples can be identified after shuffling."""
    rng = np.random.default_rng(offset)
    out = []
    for i in range(n):
        c = channels if isinstance(channels, int) else channels[i % len(channels)]
        a = patches if isinstance(patches, int) else patches[i % len(patches)]
        out.append(
            {
                "signal": rng.standard_normal((c, a * 200)).astype(np.float32),
                "channel_ids": np.arange(1, c + 1, dtype=np.int32) + source_tag,
                "label": offset + i,
            }
        )
    return out


def _labels(it, n_batches):
    return np.concatenate([next(it)["label"] for _ in range(n_batches)])


def test_padding_and_masks_follow_the_layout():
    recs = _records(6, channels=[2, 4, 3], patches=[1, 3, 2])
    it = loaders.make_loader(
        recs, batch_size=6, max_channels=5, max_patches=4, shuffle=False, shard_index=0, shard_count=1
    )
    b = next(it)
    assert b["eeg"].shape == (6, 5, 4, 200) and b["eeg"].dtype == np.float32
    assert b["channel_ids"].dtype == np.int32 and b["label"].dtype == np.int32
    for k, rec in enumerate(recs):
        c, a = rec["signal"].shape[0], rec["signal"].shape[1] // 200
        np.testing.assert_array_equal(b["eeg"][k, :c, :a], patchify(rec["signal"]))
        assert not b["eeg"][k, c:].any() and not b["eeg"][k, :, a:].any()
        assert b["channel_mask"][k].tolist() == [True] * c + [False] * (5 - c)
        assert b["patch_mask"][k].tolist() == [True] * a + [False] * (4 - a)
        assert b["channel_ids"][k].tolist() == rec["channel_ids"].tolist() + [0] * (5 - c)
        assert b["label"][k] == k


def test_over_budget_record_is_an_actionable_error():
    it = loaders.make_loader(
        _records(4, channels=6), batch_size=2, max_channels=5, max_patches=4, shard_index=0, shard_count=1
    )
    with pytest.raises(ValueError, match="max_channels"):
        next(it)


def test_deterministic_for_a_seed_and_reshuffled_each_epoch():
    recs = _records(20)
    kw = dict(batch_size=5, max_channels=3, max_patches=2, shard_index=0, shard_count=1)
    a = _labels(loaders.make_loader(recs, seed=7, **kw), 8)
    b = _labels(loaders.make_loader(recs, seed=7, **kw), 8)
    c = _labels(loaders.make_loader(recs, seed=8, **kw), 8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sorted(a[:20]) == list(range(20)) == sorted(a[20:])  # each epoch is a permutation
    assert not np.array_equal(a[:20], a[20:])  # ... a different one


def test_shards_are_disjoint_and_complete():
    recs = _records(23)
    seen = []
    for shard in range(3):
        it = loaders.make_loader(
            recs,
            batch_size=4,
            max_channels=3,
            max_patches=2,
            seed=1,
            shard_index=shard,
            shard_count=3,
            num_epochs=1,
            drop_remainder=False,
        )
        seen.append(np.concatenate([b["label"] for b in it]))
    assert sum(len(s) for s in seen) == 23
    assert sorted(np.concatenate(seen)) == list(range(23))


def test_eval_loader_never_drops_or_duplicates():
    recs = _records(10)
    batches_per_shard = []
    valid_labels = []
    for shard in range(3):
        batches = list(
            loaders.make_eval_loader(
                recs, batch_size=3, max_channels=3, max_patches=2, shard_index=shard, shard_count=3
            )
        )
        batches_per_shard.append(len(batches))
        for b in batches:
            assert b["eeg"].shape == (3, 3, 2, 200)
            valid_labels += b["label"][b["valid"]].tolist()
            np.testing.assert_array_equal(b["index"][b["valid"]], b["label"][b["valid"]])
            assert (b["index"][~b["valid"]] == -1).all() and b["channel_mask"].any(axis=1).all()
    assert batches_per_shard == [loaders.eval_num_batches(10, 3, 3)] * 3 == [2, 2, 2]  # lock-step
    assert sorted(valid_labels) == list(range(10))


def test_mixture_proportions_and_mixed_batches():
    sources = [_records(30, offset=0), _records(7, channels=2, offset=1000), _records(50, patches=1, offset=2000)]
    weights = [0.6, 0.3, 0.1]
    it = loaders.make_loader(
        sources, weights=weights, batch_size=20, max_channels=3, max_patches=2, seed=0, shard_index=0, shard_count=1
    )
    batches = [next(it) for _ in range(50)]
    src = np.stack([b["source"] for b in batches])
    np.testing.assert_allclose(proportions(src, 3), weights, atol=0.01)
    assert all(len(set(row)) > 1 for row in src)  # every batch mixes datasets
    for b in batches:  # label ranges identify the dataset
        np.testing.assert_array_equal(b["label"] // 1000, b["source"])
        np.testing.assert_array_equal(b["patch_mask"].sum(1), np.where(b["source"] == 2, 1, 2))


def test_resume_through_orbax_yields_the_next_batches(tmp_path):
    sources = [_records(17, offset=0), _records(9, offset=1000)]

    def loader():
        return loaders.make_loader(
            sources,
            weights=[0.5, 0.5],
            batch_size=4,
            max_channels=3,
            max_patches=2,
            seed=3,
            shard_index=0,
            shard_count=1,
        )

    it = loader()
    for _ in range(5):
        next(it)
    mngr = ocp.CheckpointManager(tmp_path / "ckpt")
    mngr.save(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
    mngr.wait_until_finished()
    expected = [next(it) for _ in range(6)]  # what should come next (crosses epoch boundaries)

    fresh = loader()
    mngr.restore(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
    for want in expected:
        got = next(fresh)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_tfds_source_and_multiprocess_prefetch(tmp_path):
    """A built TFDS dataset feeds the loader; worker-process prefetch yields the same batches."""
    from tfds_builders.demo import Demo, DemoConfig

    Demo(
        config=DemoConfig(name="loader_tuab", kind="tuab", train_subjects=3, eval_subjects=1, seconds=30.0),
        data_dir=str(tmp_path),
    ).download_and_prepare()
    src = loaders.open_tfds("demo/loader_tuab", tmp_path, "train")
    assert len(src) > 0
    kw = dict(batch_size=4, max_channels=24, max_patches=12, seed=0, shard_index=0, shard_count=1)
    plain = [next(loaders.make_loader(src, **kw)) for _ in range(1)]
    it = loaders.make_loader(src, num_workers=1, **kw)
    first = next(it)
    for key in plain[0]:
        np.testing.assert_array_equal(first[key], plain[0][key])
    assert first["eeg"].shape == (4, 24, 12, 200) and first["patch_mask"].sum(1).tolist() == [10] * 4
    with pytest.raises(FileNotFoundError, match="tfds_builders.build"):
        loaders.open_tfds("demo/absent", tmp_path, "train")
