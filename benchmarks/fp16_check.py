"""FP16 that loads and matches (issue 17): convert a model to FP16 with ``optieval.convert``, prove
it loads (``onnx.checker`` full check, a plain ONNX Runtime session), and compare its outputs
with FP32's per sample: cosine (mean, min, 1st percentile), max abs difference, for
embeddings the nearest-neighbour agreement (each sample's nearest other sample the same), for
class scores the top-1 agreement.

Run (MiniLM-L6, 200 sentences at sequence 128)::

    python benchmarks/fp16_check.py --model /tmp/realmodels/minilm.onnx \\
        --data /tmp/realmodels/minilm_data.npz [--exclude Cast]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help=".npz keyed by input name")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()

    import onnx
    import onnxruntime as ort

    from optieval.precision import convert

    with tempfile.TemporaryDirectory(prefix="fp16-check-") as work:
        os.environ["OPTIEVAL_CACHE"] = str(Path(work) / "cache")
        started = time.perf_counter()
        stages: list[str] = []
        result = convert(
            args.model,
            "fp16",
            output=Path(work) / "model.fp16.onnx",
            exclude=args.exclude,
            progress=lambda m: stages.append(f"{time.perf_counter() - started:.1f}s {m}"),
        )
        print(f"convert: {result.seconds:.1f} s; census {result.census.compute}")
        print("stages: " + "; ".join(stages))
        onnx.checker.check_model(result.output, full_check=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        fp32 = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
        fp16 = ort.InferenceSession(result.output, options, providers=["CPUExecutionProvider"])
        names = [i.name for i in fp32.get_inputs()]
        data = np.load(args.data)
        count = len(data[names[0]])
        a, b = [], []
        for i in range(0, count, args.batch):
            feed = {n: data[n][i : i + args.batch] for n in names}
            a.append(fp32.run(None, feed)[0])
            b.append(fp16.run(None, feed)[0])
        ref = np.concatenate(a).reshape(count, -1).astype(np.float64)
        got = np.concatenate(b).reshape(count, -1).astype(np.float64)
        cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
        print(
            f"loads: yes; {count} samples: cosine mean {cos.mean():.7f}, min {cos.min():.7f}, "
            f"p1 {np.percentile(cos, 1):.7f}; max abs diff {np.abs(ref - got).max():.3g}"
        )
        sim_ref, sim_got = ref @ ref.T, got @ got.T
        np.fill_diagonal(sim_ref, -np.inf)
        np.fill_diagonal(sim_got, -np.inf)
        agree = (sim_ref.argmax(1) == sim_got.argmax(1)).mean()
        print(f"nearest-neighbour agreement: {agree:.3f}")
        top1 = (ref.argmax(1) == got.argmax(1)).mean()
        print(f"argmax (top-1 for class scores) agreement: {top1:.4f} of {count}")


if __name__ == "__main__":
    main()
