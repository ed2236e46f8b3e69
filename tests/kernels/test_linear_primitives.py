"""Both oneDNN primitives a linear can run on (matmul, the default, and inner_product through
IPEX_LINEAR_PRIMITIVE), with a context that copies its weight and one that shares it, one
and two threads, with and without bias and a fused post-op: each agrees with F.linear. The
primitive is chosen when the runtime loads, so each case runs in a fresh process."""
import os
import subprocess
import sys

import pytest

RUN = """
import sys, torch, torch.nn.functional as F
from ipex._kernels import ops

torch.set_num_threads(int(sys.argv[1]))
share = sys.argv[2] == "share"
g = torch.Generator().manual_seed(0)
worst = 0.0
for n, k, rows in ((512, 256, 64), (96, 40, 3), (1000, 64, 128)):
    w = torch.randn(n, k, generator=g)
    x = torch.randn(rows, k, generator=g)
    for b in (None, torch.randn(n, generator=g)):
        ctx = ops().linear_prepack(w, b, torch.float32, share)
        for post, ref in (("none", F.linear(x, w, b)), ("relu", F.relu(F.linear(x, w, b)))):
            y = ops().linear_run(x, ctx, post, [], None, None)
            worst = max(worst, ((y - ref).abs().max() / ref.abs().max()).item())
print(worst)
"""


@pytest.mark.parametrize("primitive", ["matmul", "inner_product"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("sharing", ["copy", "share"])
def test_linear_agrees_with_stock(kops, primitive, threads, sharing):
    env = dict(os.environ, IPEX_LINEAR_PRIMITIVE=primitive,
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    p = subprocess.run([sys.executable, "-c", RUN, str(threads), sharing], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert float(p.stdout) <= 1e-5, p.stdout
