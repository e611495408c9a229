"""The PyTorch source model: specs (``pkg.mod:factory``, ``file.py:factory``, TorchScript,
``.pt2``) and checkpoints turned into a module in eval mode.

These names are the concern's public surface; every other module in it is private to it.
Each loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.source.specs import LoadedModel as LoadedModel
    from optieval.source.specs import flatten_outputs as flatten_outputs
    from optieval.source.specs import load_model as load_model
    from optieval.source.specs import load_model_from_manifest as load_model_from_manifest
    from optieval.source.text import one_line as one_line

_EXPORTS = {
    "LoadedModel": "optieval.source.specs",
    "flatten_outputs": "optieval.source.specs",
    "load_model": "optieval.source.specs",
    "load_model_from_manifest": "optieval.source.specs",
    "one_line": "optieval.source.text",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
