"""compare and the gate on data whose sequence length varies across samples (issue 17): the
samples run in batches of one shape group, outputs come back in the data's sample order, and
per-sample metrics and labels work across lengths; an output whose shape follows the length
is exit 2 naming it; samples whose tied dimensions disagree stay exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from optieval.cli import app
from optieval.core import signature_from_onnx
from optieval.errors import InputError
from optieval.parity import compare
from optieval.parity.runs import gather_inputs
from optieval.parity.sample_groups import run_grouped
from optieval.release import gate
from optieval.stats import Verdict
from tests.parity.kind_models import make_encoder, token_data
from tests.release.gate_helpers import FAST_MEASURE
from tests.text_encoder import VOCAB, encoder_onnx, sentences

runner = CliRunner()
# Interleaved lengths, so that the data's order differs from the groups' order.
LENGTHS = [4, 9, 4, 13, 9, 4, 13, 9, 4, 6, 9, 13, 4, 6, 9, 4, 13, 6, 4, 9]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encoder_onnx(tmp_path_factory)


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/parity/kind_models.py's encoder (unit-norm ``sentence_embedding``) with its
    sequence made dynamic: a graph the FP16 converter handles (the exported torch encoder's
    FP16 artifact crashes ONNX Runtime's session creation here, outside this task)."""
    import onnx

    path = make_encoder(tmp_path_factory.mktemp("pooled") / "enc.onnx")
    model = onnx.load(str(path))
    for value in model.graph.input:
        value.type.tensor_type.shape.dim[1].dim_param = "seq"
    onnx.save(model, str(path))
    return path


def _session(model: Path):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])


def test_outputs_come_back_in_the_data_order(encoder: Path, tmp_path: Path) -> None:
    import onnx

    folder = sentences(tmp_path / "s", LENGTHS)
    given = gather_inputs(signature_from_onnx(onnx.load(str(encoder))), model_sha256="",
                          data=folder, labels_key=None, samples=None, golden=None,
                          seed=0)  # fmt: skip
    assert given.groups is not None and given.inputs == {}
    assert len(given.groups.groups) == 4 and given.samples == len(LENGTHS)
    session = _session(encoder)
    batches: list[int] = []

    def run(feeds):  # type: ignore[no-untyped-def]
        assert len({v.shape for v in feeds.values()}) == 1  # never mixes lengths
        batches.append(int(feeds["input_ids"].shape[1]))
        return dict(zip(["embedding"], session.run(None, dict(feeds)), strict=True))

    merged = run_grouped(run, given.groups)
    assert sorted(batches) == [4, 6, 9, 13]
    files = sorted(folder.glob("*.npz"), key=lambda p: int(p.stem[1:]))
    for i, path in enumerate(files):
        sample = np.load(path)
        one = {k: sample[k][None] for k in ("input_ids", "attention_mask")}
        (expected,) = session.run(None, one)
        np.testing.assert_allclose(merged["embedding"][i], expected[0], rtol=1e-5, atol=1e-6)


def test_fp16_per_sample_metrics_across_lengths(pooled: Path, tmp_path: Path) -> None:
    folder = sentences(tmp_path / "s", LENGTHS)
    report = compare(pooled, ["ort-cpu:fp32", "ort-cpu:fp16"], data=folder, batch=3, knn_k=3)
    assert report.passed, report.to_json()
    for res in report.results:
        (out,) = res.outputs
        assert res.samples == len(LENGTHS) and out.kind == "embedding"
        cos = out.cosine_per_sample
        assert cos is not None and cos.samples == len(LENGTHS)
        assert out.neighbours is not None
    fp32 = report.result("ort-cpu:fp32").outputs[0]
    assert fp32.cosine_per_sample.min > 0.99999 and fp32.neighbours.agreement == 1.0
    assert report.result("ort-cpu:fp16").outputs[0].cosine_per_sample.min > 0.99


def test_labels_follow_the_samples_across_lengths(encoder: Path, tmp_path: Path) -> None:
    # Labels = the reference's own argmax per sample: accuracy 1.0 only if every label meets
    # its own sample's output after the groups are put back in order.
    session = _session(encoder)
    folder = tmp_path / "labelled"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i, n in enumerate(LENGTHS):
        ids = rng.integers(0, VOCAB, n).astype(np.int64)
        mask = np.ones(n, np.int64)
        (emb,) = session.run(None, {"input_ids": ids[None], "attention_mask": mask[None]})
        np.savez(folder / f"s{i:02d}.npz", input_ids=ids, attention_mask=mask,
                 label=np.int64(np.argmax(emb[0])))  # fmt: skip
    report = compare(encoder, ["ort-cpu:fp32"], data=folder, labels="label",
                     output_kinds=["logits"])  # fmt: skip
    (out,) = report.results[0].outputs
    assert out.accuracy_reference == 1.0 and out.accuracy_candidate == 1.0


def _per_token_model(path: Path) -> Path:
    """x [batch, seq] float -> tokens = Relu(x) [batch, seq], pooled = ReduceSum(x, 1) [batch]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["tokens"]),
            helper.make_node("ReduceSum", ["x", "axes"], ["pooled"], keepdims=0),
        ],
        "per_token",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq"])],
        [
            helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", "seq"]),
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch"]),
        ],
        [numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_an_output_that_follows_the_length_is_exit_2_naming_it(tmp_path: Path) -> None:
    model = _per_token_model(tmp_path / "tok.onnx")
    folder = tmp_path / "x"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, n in enumerate([3, 5, 3, 5]):
        np.savez(folder / f"s{i}.npz", x=rng.normal(size=n).astype(np.float32))
    with pytest.raises(InputError) as info:
        compare(model, ["ort-cpu:fp32"], data=folder)
    assert "output 'tokens' changes shape" in info.value.message
    assert "[batch, 3], [batch, 5]" in info.value.message
    result = runner.invoke(app, ["compare", str(model), "-c", "ort-cpu:fp32",
                                 "--data", str(folder)])  # fmt: skip
    assert result.exit_code == 2 and "'tokens'" in result.output
    assert "Traceback" not in result.output


def test_tied_dimensions_that_disagree_stay_exit_2(encoder: Path, tmp_path: Path) -> None:
    folder = sentences(tmp_path / "s", [4, 9, 4])
    np.savez(folder / "s3.npz", input_ids=np.ones(5, np.int64),
             attention_mask=np.ones(6, np.int64))  # fmt: skip
    result = runner.invoke(app, ["compare", str(encoder), "-c", "ort-cpu:fp32",
                                 "--data", str(folder)])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "seq" in result.output


def test_golden_from_varying_lengths_is_exit_2(encoder: Path, tmp_path: Path) -> None:
    folder = sentences(tmp_path / "s", [4, 9, 4])
    with pytest.raises(InputError) as info:
        compare(encoder, ["ort-cpu:fp32"], data=folder, save_golden_dir=tmp_path / "g")
    assert info.value.where == "save_golden_dir" and "differ in length" in info.value.message
    assert not (tmp_path / "g").exists()


def test_gate_accuracy_on_varying_lengths(pooled: Path, tmp_path: Path) -> None:
    folder = sentences(tmp_path / "s", LENGTHS)
    config = tmp_path / "rel" / "release.toml"
    config.parent.mkdir()
    calib = token_data(tmp_path / "calib.npz", 32, seed=1)  # padded to one length
    targets = "".join(
        f'[[target]]\nbackend = "ort-cpu"\nprecision = "{p}"\nbatch = 2\n'
        "[target.latency]\np50_ms_max = 10000.0\n[target.accuracy]\ncosine_min = 0.9\n"
        for p in ("fp16", "int8")
    )
    config.write_text(
        f'[model]\npath = "{pooled}"\n[data]\nevaluation = "{folder}"\n'
        f'calibration = "{calib}"\n{FAST_MEASURE}\n{targets}'
    )
    report = gate(config, out_dir=tmp_path / "out")
    assert report.exit_code == 0, [c.judgement.evidence for c in report.checks]
    cosine = [c for c in report.checks if c.key == "cosine_min"]
    assert len(cosine) == 2 and all(c.judgement.verdict is Verdict.PASS for c in cosine), cosine
    assert all("all 20 samples" in c.judgement.evidence for c in cosine)


def test_int8_without_calib_on_varying_lengths_is_exit_2(pooled: Path, tmp_path: Path) -> None:
    folder = sentences(tmp_path / "s", [4, 9, 4])
    result = runner.invoke(app, ["compare", str(pooled), "-c", "ort-cpu:int8",
                                 "--data", str(folder)])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--calib" in result.output and "differ in length" in result.output
