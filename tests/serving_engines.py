"""Imports the serving engines' real Python code for tests/test_engine_*.py.

.ci/setup installs vLLM and SGLang without their GPU dependencies (.ci/engine-requirements.txt
pins them). A missing engine skips its tests, or fails them under FASTSAMPLE_REQUIRE_ENGINES=1
(as CI runs).

SGLang's sampler module reaches, through its model configs, a multimodal config that imports
torchvision at module level; no torchvision build loads beside the CPU torch here (PyPI's needs
libtorch_cuda). Those configs never run in these tests, so torchvision is replaced by an empty
module for SGLang's import only: transformers' own torchvision check is settled (False) first,
and the placeholder leaves sys.modules once SGLang is imported.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
import types

import pytest

_TORCHVISION = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional",
                "torchvision.transforms.v2", "torchvision.io", "torchvision.ops")


def _missing(engine: str, error: Exception):
    why = f"{engine} is not installed here ({error}); bash .ci/setup installs it"
    if os.environ.get("FASTSAMPLE_REQUIRE_ENGINES") == "1":
        pytest.fail(why + "; CI requires it")
    pytest.skip(why)


def import_vllm():
    """vllm.v1.sample (sampler, metadata, logits processors) and vllm.sampling_params."""
    try:
        importlib.import_module("vllm.v1.sample.sampler")
        importlib.import_module("vllm.v1.sample.logits_processor")
        return importlib.import_module("vllm")
    except ImportError as e:
        _missing("vLLM", e)


class _Unused:
    """What SGLang's multimodal configs read from torchvision at import: never called here."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return _Unused()

    def __call__(self, *args, **kwargs):
        return _Unused()


def _placeholder(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__path__ = []

    def attribute(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Unused

    module.__getattr__ = attribute
    return module


def import_sglang():
    """sglang.srt.layers.sampler and sglang.srt.sampling, imported as described above."""
    if "sglang.srt.layers.sampler" in sys.modules:
        return sys.modules["sglang.srt.layers.sampler"]
    if importlib.util.find_spec("sglang") is None:
        _missing("SGLang", ImportError("no module named sglang"))
    from transformers.utils import import_utils
    import_utils.is_torchvision_available()  # cached before the placeholder exists
    added = [name for name in _TORCHVISION if name not in sys.modules]
    for name in added:
        sys.modules[name] = _placeholder(name)
    try:
        importlib.import_module("sglang.srt.sampling.sampling_batch_info")
        return importlib.import_module("sglang.srt.layers.sampler")
    except ImportError as e:
        _missing("SGLang", e)
    finally:
        for name in added:
            sys.modules.pop(name, None)
