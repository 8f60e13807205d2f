"""The kernel's first use may come from inside torch.inference_mode (afm.predict): it must still load."""

from __future__ import annotations

import subprocess
import sys

import pytest

from afm import native

CODE = """
import torch, afm
from afm import native
d = afm.datasets.sample(); m = afm.AFM(d.n_features, d.n_fields, 8, 8)
afm.predict(m, d.subset(range(64)))  # the first kernel call, inside inference_mode
print('loaded' if native.library() is not None else 'fallback')
"""


@pytest.mark.skipif(native.library() is None, reason="no fused kernel can be built here")
@pytest.mark.slow
def test_the_kernel_loads_when_first_used_in_inference_mode(tmp_path) -> None:  # noqa: ANN001
    env = {**__import__("os").environ, "AFM_CACHE": str(tmp_path)}  # a fresh cache: build and self-test now
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "loaded", out.stderr[-2000:]
