"""The shared data-set loader: .npz, directories, Python loaders, batching, every bad input."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from optieval.core.data import Dataset, load_dataset
from optieval.core.signature import Signature, TensorSpec
from optieval.errors import InputError

SIG = Signature(
    (TensorSpec("x", "float32", ("batch", 3, 4)), TensorSpec("ids", "int64", ("batch", "seq"))),
    (TensorSpec("y", "float32", ("batch", 2)),),
)
ONE = Signature((TensorSpec("x", "float32", ("batch", 3, 4)),), ())


def _x(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, 4)).astype(np.float32)


def _ids(n: int) -> np.ndarray:
    return np.arange(n * 5, dtype=np.int64).reshape(n, 5)


# -- sources ------------------------------------------------------------------------------------


def test_npz_inputs_labels_and_ignored_keys(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=_x(6), ids=_ids(6), labels=np.arange(6), extra=np.zeros(3))
    data = load_dataset(path, SIG, labels_key="labels")
    assert data.num_samples == 6
    assert set(data.inputs) == {"x", "ids"}
    assert data.labels is not None and list(data.labels) == list(range(6))
    assert len(data.notes) == 1 and data.notes[0].endswith("inputs: extra")
    assert not data.inputs["x"].flags.writeable


def test_npz_lists_unnamed_keys_in_a_note(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=_x(2), labels=np.arange(2))
    data = load_dataset(path, ONE)
    assert data.labels is None
    assert "labels" in data.notes[0]


def test_directory_of_npy_named_after_inputs(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", _x(4))
    np.save(tmp_path / "ids.npy", _ids(4))
    np.save(tmp_path / "labels.npy", np.arange(4))
    data = load_dataset(tmp_path, SIG, labels_key="labels")
    assert data.num_samples == 4
    assert data.labels is not None and data.labels.shape == (4,)


def test_directory_of_single_samples_in_natural_order(tmp_path: Path) -> None:
    samples = _x(11)
    for i in range(11):
        np.save(tmp_path / f"s{i}.npy", samples[i])  # one sample per file, no batch axis
    data = load_dataset(tmp_path, ONE)
    assert data.num_samples == 11
    np.testing.assert_array_equal(data.inputs["x"], samples)  # s2 before s10


def test_directory_of_npz_blocks_and_samples(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=_x(3), ids=_ids(3))
    np.savez(tmp_path / "b.npz", x=_x(1)[0], ids=_ids(1)[0])  # one sample
    data = load_dataset(tmp_path, SIG)
    assert data.num_samples == 4


def test_python_loader_module_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_loader_mod.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def samples():
                for i in range(5):
                    yield {"x": np.full((3, 4), i, np.float32), "label": i}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    data = load_dataset("my_loader_mod:samples", ONE, labels_key="label")
    assert data.num_samples == 5
    assert data.inputs["x"].shape == (5, 3, 4)
    assert data.labels is not None and list(data.labels) == [0, 1, 2, 3, 4]
    by_file = load_dataset(f"{tmp_path / 'my_loader_mod.py'}:samples", ONE, max_samples=2)
    assert by_file.num_samples == 2
    sys.modules.pop("my_loader_mod", None)


# -- batching -----------------------------------------------------------------------------------


def test_batches_one_pass_cycle_and_count() -> None:
    data = Dataset({"x": _x(5)})
    sizes = [b["x"].shape[0] for b in data.batches(2)]
    assert sizes == [2, 2, 1]
    cycled = list(data.batches(2, count=4, cycle=True))
    assert [b["x"].shape[0] for b in cycled] == [2, 2, 2, 2]
    np.testing.assert_array_equal(cycled[2]["x"][1], data.inputs["x"][0])  # wrapped around
    assert len(list(data.batches(8, count=3, cycle=True))) == 3  # batch larger than the data
    with pytest.raises(InputError, match="need 8 samples"):
        data.batches(2, count=4)
    with pytest.raises(InputError, match="at least 1"):
        data.batches(0)
    with pytest.raises(InputError, match="no samples"):
        Dataset({"x": _x(0)}).batches(2, cycle=True)


def test_subset_and_fingerprint() -> None:
    data = Dataset({"x": _x(5)}, np.arange(5), ["n"], "src")
    sub = data.subset([4, 0, 0])
    assert sub.num_samples == 3 and list(sub.labels) == [4, 0, 0]  # type: ignore[arg-type]
    assert sub.fingerprint() != data.fingerprint()
    assert data.subset(range(5)).fingerprint() == data.fingerprint()
    with pytest.raises(InputError, match="outside"):
        data.subset([5])


# -- bad input ----------------------------------------------------------------------------------


def _error(source: object, sig: Signature = SIG, **kwargs: object) -> str:
    with pytest.raises(InputError) as info:
        load_dataset(source, sig, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_missing_input_is_named(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=_x(3))
    message = _error(path)
    assert "'ids' is missing" in message and str(path) in message


def test_wrong_dtype_is_named(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=_x(3).astype(np.float64), ids=_ids(3))
    message = _error(path)
    assert "float64" in message and "'x'" in message and "float32" in message


def test_wrong_shape_is_named(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((3, 3, 5), np.float32), ids=_ids(3))
    message = _error(path)
    assert "per-sample shape 3x5" in message and "'x'" in message


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_are_refused(tmp_path: Path, bad: float) -> None:
    x = _x(4)
    x[2, 1, 1] = bad
    path = tmp_path / "d.npz"
    np.savez(path, x=x, ids=_ids(4))
    message = _error(path)
    assert "NaN/Inf" in message and "sample 2" in message and "'x'" in message


def test_different_sample_counts(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=_x(3), ids=_ids(4))
    assert "different numbers of samples" in _error(path)


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no arrays here")
    message = _error(tmp_path)
    assert "no .npy or .npz" in message and str(tmp_path) in message


def test_directory_file_matching_no_input(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", _x(2))
    np.save(tmp_path / "mystery.npy", _x(2))
    assert "mystery.npy" in _error(tmp_path)


def test_loader_that_raises(tmp_path: Path) -> None:
    (tmp_path / "bad_loader.py").write_text(
        "def samples():\n    yield {'x': [[0.0] * 4] * 3}\n    raise RuntimeError('disk gone')\n"
    )
    message = _error(f"{tmp_path / 'bad_loader.py'}:samples", ONE)
    assert "RuntimeError" in message and "disk gone" in message and "bad_loader.py" in message


def test_loader_not_importable_or_wrong_items(tmp_path: Path) -> None:
    assert "cannot import" in _error("no_such_module_xyz:samples", ONE)
    (tmp_path / "odd_loader.py").write_text("def samples():\n    return [1, 2]\n")
    assert "not a dict" in _error(f"{tmp_path / 'odd_loader.py'}:samples", ONE)
    (tmp_path / "batched_loader.py").write_text(
        "import numpy as np\ndef samples():\n    yield {'x': np.zeros((1, 3, 4), np.float32)}\n"
    )
    assert "without the batch axis" in _error(f"{tmp_path / 'batched_loader.py'}:samples", ONE)


def test_missing_source_and_wrong_file_type(tmp_path: Path) -> None:
    assert "not found" in _error(tmp_path / "nope.npz")
    other = tmp_path / "d.csv"
    other.write_text("1,2")
    assert "must be an .npz" in _error(other)


def test_missing_labels_key(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=_x(2), ids=_ids(2))
    assert "no labels key 'y'" in _error(path, labels_key="y")


def test_object_arrays_are_refused_without_pickle(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([object()] * 2, dtype=object))
    assert "pickle" in _error(path, ONE)


def test_loader_module_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cwd_loader_mod.py").write_text(
        "import numpy as np\ndef samples():\n    yield {'x': np.zeros((3, 4), np.float32)}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert load_dataset("cwd_loader_mod:samples", ONE).num_samples == 1
    sys.modules.pop("cwd_loader_mod", None)


# -- dynamic dimensions that vary across samples (issue 17) --------------------------------------

ENCODER = Signature(
    (
        TensorSpec("input_ids", "int64", ("batch", "seq")),
        TensorSpec("attention_mask", "int64", ("batch", "seq")),
    ),
    (TensorSpec("embedding", "float32", ("batch", 8)),),
)


def _sentences(folder: Path, lengths: list[int]) -> Path:
    folder.mkdir()
    for i, n in enumerate(lengths):
        ids = np.arange(n, dtype=np.int64) + i
        np.savez(folder / f"s{i}.npz", input_ids=ids, attention_mask=np.ones(n, np.int64))
    return folder


def test_varying_lengths_are_refused_naming_input_dimension_and_fix(tmp_path: Path) -> None:
    folder = _sentences(tmp_path / "sentences", [5, 9, 5, 12])
    with pytest.raises(InputError) as info:
        load_dataset(folder, ENCODER)
    message = info.value.message
    assert "inputs 'input_ids' and 'attention_mask' dimension 1 (seq) varies" in message
    assert "5 to 12, 3 sizes" in message and "pad every sample" in message
    assert info.value.where == str(folder)


def test_ragged_data_groups_samples_by_length(tmp_path: Path) -> None:
    folder = _sentences(tmp_path / "sentences", [5, 9, 5, 12, 9, 5])
    data = load_dataset(folder, ENCODER, labels_key=None, ragged=True)
    assert data.is_ragged and data.num_samples == 6 and data.inputs == {}
    groups = data.shape_groups()
    assert [g.inputs["input_ids"].shape for g in groups] == [(3, 5), (2, 9), (1, 12)]
    # Samples keep their identity inside a group (s0, s2, s5 are the length-5 ones).
    assert [int(row[0]) for row in groups[0].inputs["input_ids"]] == [0, 2, 5]
    batches = data.length_batches(2, limit=64)
    assert all(len({v.shape for v in b.values()}) == 1 for b in batches)
    assert sorted({b["input_ids"].shape for b in batches}) == [(2, 5), (2, 9), (2, 12)]
    with pytest.raises(InputError, match="one batch cannot mix them"):
        data.batches(2)
    assert (
        data.fingerprint()
        != load_dataset(
            _sentences(tmp_path / "other", [5, 9, 5, 12, 9, 6]), ENCODER, ragged=True
        ).fingerprint()
    )


def test_ragged_loader_and_tied_dimensions(tmp_path: Path) -> None:
    (tmp_path / "sent_loader.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def good():
                for n in (3, 7, 3):
                    ids = np.zeros(n, np.int64)
                    yield {"input_ids": ids, "attention_mask": np.ones(n, np.int64)}

            def torn():
                yield {"input_ids": np.zeros(3, np.int64), "attention_mask": np.ones(3, np.int64)}
                yield {"input_ids": np.zeros(7, np.int64), "attention_mask": np.ones(6, np.int64)}
            """
        )
    )
    loader = f"{tmp_path / 'sent_loader.py'}"
    data = load_dataset(f"{loader}:good", ENCODER, ragged=True)
    assert [g.num_samples for g in data.shape_groups()] == [2, 1]
    with pytest.raises(InputError, match=r"sample 1: inputs disagree on dimension 'seq'"):
        load_dataset(f"{loader}:torn", ENCODER, ragged=True)


def test_uniform_data_whose_inputs_disagree_on_a_tied_dimension(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, input_ids=np.zeros((4, 6), np.int64), attention_mask=np.ones((4, 8), np.int64))
    with pytest.raises(InputError, match="inputs disagree on dimension 'seq'.*6.*8"):
        load_dataset(path, ENCODER)
