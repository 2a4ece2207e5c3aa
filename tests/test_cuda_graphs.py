"""CUDA graphs for the lab generator: a plain call on the CPU; on a GPU, the same numbers as eager, faster.

The GPU tests run on the lent device machine (`pytest tests/test_cuda_graphs.py`); CI has no GPU and skips them.
"""

from __future__ import annotations

import pytest
import torch

from ttscale.cuda_graphs import GraphedCall
from ttscale.lab.generator import LabGenerator

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_on_the_cpu_it_is_the_plain_call() -> None:
    calls: list[int] = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return x * 2

    graphed = GraphedCall(fn)
    assert torch.equal(graphed(torch.ones(3)), torch.full((3,), 2.0))
    assert calls == [1] and graphed.graphs == {}


def test_lab_generator_samples_the_same_with_and_without_graphs_on_the_cpu() -> None:
    a = LabGenerator.from_pretrained("lab-small", steps=4).sample("a photo of a red circle", [1, 2])
    b = LabGenerator.from_pretrained("lab-small", steps=4, cuda_graphs=False).sample("a photo of a red circle", [1, 2])
    assert torch.equal(a, b)


@cuda
def test_graphs_replay_per_shape_and_match_eager() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.GELU(), torch.nn.Linear(32, 8)).cuda()
    graphed = GraphedCall(net)
    with torch.no_grad():
        for batch in (4, 16, 4):
            x = torch.randn(batch, 8, device="cuda")
            torch.testing.assert_close(graphed(x), net(x))
    assert len(graphed.graphs) == 2 and graphed.enabled


@cuda
def test_a_call_that_cannot_be_captured_runs_eagerly_with_a_warning() -> None:
    def syncs(x: torch.Tensor) -> torch.Tensor:
        return x * float(x.sum().item() > 0)  # .item() synchronises: not allowed while capturing

    graphed = GraphedCall(syncs)
    x = torch.ones(4, device="cuda")
    with pytest.warns(RuntimeWarning, match="CUDA graphs off"):
        out = graphed(x)
    assert torch.equal(out, x) and not graphed.enabled


@cuda
def test_lab_generator_with_graphs_matches_eager_and_is_faster() -> None:
    import time

    fast = LabGenerator.from_pretrained("lab-small", steps=20, device="cuda")
    slow = LabGenerator.from_pretrained("lab-small", steps=20, device="cuda", cuda_graphs=False)
    seeds = list(range(8))
    torch.testing.assert_close(
        fast.sample("a photo of two circles", seeds), slow.sample("a photo of two circles", seeds)
    )
    assert fast._velocity.enabled and fast._velocity.graphs

    def seconds(gen: LabGenerator) -> float:
        gen.sample("a photo of a red circle", seeds)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(5):
            gen.sample("a photo of a red circle", seeds)
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    eager, graphed = seconds(slow), seconds(fast)
    print(f"lab-small, 8 samples x 20 steps: eager {eager / 5:.4f} s, graphs {graphed / 5:.4f} s")
    assert graphed < eager


@cuda
@pytest.mark.parametrize("name", ["lab-visa", "lab-clip"])
def test_lab_verifiers_with_graphs_match_eager(name: str) -> None:
    from ttscale.lab.verifiers import LabVerifier

    images = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    prompts = ["a photo of a red circle", "a photo of two squares", "a photo of a cross above a circle"] * 4
    fast = LabVerifier.from_pretrained(name, device="cuda")
    slow = LabVerifier.from_pretrained(name, device="cuda", cuda_graphs=False)
    for _ in range(2):  # the first call captures, the second replays
        torch.testing.assert_close(fast.score(images, prompts), slow.score(images, prompts))
    assert fast._graphed.enabled and len(fast._graphed.graphs) == 1
