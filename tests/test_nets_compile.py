"""Explicit noise inputs, and the training passes as single torch.compile graphs.

At the small per-GPU batches of a fine-tune the training step is bound by the host launching
thousands of small kernels (BENCHMARKS.md: 64² costs two thirds of 256² on an H100). Compiling the
passes is the lever, and it only pays when each network is one graph: a break per layer leaves most
of the launches in Python. These tests hold the networks to that, on CPU, with dynamo's own
accounting; they do not run inductor (that is slow on two cores and is what the GPU check measures).
"""

from __future__ import annotations

import pytest
import torch

from bender.nets import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig, SynthesisConfig


def tiny_g(arch: str = "skip", use_noise: bool = True) -> Generator:
    torch.manual_seed(0)
    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, mapping=MappingConfig(num_layers=2),
                          synthesis=SynthesisConfig(channel_base=128, channel_max=16, architecture=arch,
                                                    num_fp16_res=2, conv_clamp=256, use_noise=use_noise))
    G = Generator(cfg).train()
    with torch.no_grad():  # non-zero strengths, or the noise would not show in the images
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    return G


@pytest.mark.parametrize("arch", ["skip", "resnet", "orig"])
def test_drawn_noise_reproduces_random_noise_exactly(arch):
    G = tiny_g(arch)
    ws = torch.randn(3, G.synthesis.num_ws, 16)
    inside = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    noise = G.synthesis.draw_noise(3, gen)
    outside = G.synthesis(ws, noise_mode="random", noise=noise)
    assert torch.equal(inside, outside)
    # the generator was consumed exactly as far as the layers consume it
    follow = torch.Generator().manual_seed(7)
    G.synthesis(ws, noise_mode="random", generator=follow)
    assert torch.equal(torch.rand(4, generator=gen), torch.rand(4, generator=follow))
    # and the noise really is used: other noise, another image
    other = G.synthesis(ws, noise_mode="random", noise=[n.flip(-1) for n in noise])
    assert not torch.equal(other, outside)


def test_drawn_noise_shapes_and_errors():
    G = tiny_g()
    noise = G.synthesis.draw_noise(2)
    assert [tuple(n.shape) for n in noise] == [(2, 1, 4, 4), (2, 1, 8, 8), (2, 1, 8, 8), (2, 1, 16, 16),
                                               (2, 1, 16, 16)]
    ws = torch.randn(2, G.synthesis.num_ws, 16)
    with pytest.raises(ValueError, match="one tensor per conv layer"):
        G.synthesis(ws, noise=noise[:-1])
    # noise_mode='none' still means no noise, whatever is passed
    assert torch.equal(G.synthesis(ws, noise_mode="none", noise=noise), G.synthesis(ws, noise_mode="none"))
    # a network without noise inputs draws placeholders and ignores them
    quiet = tiny_g(use_noise=False)
    assert quiet.synthesis.draw_noise(2) == [None] * 5
    assert torch.equal(quiet.synthesis(ws, noise=quiet.synthesis.draw_noise(2)), quiet.synthesis(ws))


def _graphs(fn, *args) -> tuple[int, int, list[str]]:
    torch._dynamo.reset()
    ex = torch._dynamo.explain(fn)(*args)
    return ex.graph_count, ex.graph_break_count, [str(b.reason)[:200] for b in ex.break_reasons]


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_training_passes_trace_as_one_graph_each(half):
    """What the trainer's --compile wraps, in each situation the step calls it in: G.synthesis with
    drawn noise (with gradients: G's step; without: D's step), and D (trainable: D's step; frozen,
    with gradients flowing to its input: G's step)."""
    G = tiny_g("skip")
    D = Discriminator(DiscriminatorConfig(img_resolution=16, channel_base=128, channel_max=16, num_fp16_res=2,
                                          conv_clamp=256, mbstd_group_size=2)).train()
    ws = torch.randn(4, G.synthesis.num_ws, 16, requires_grad=True)
    noise = G.synthesis.draw_noise(4, torch.Generator().manual_seed(1))

    def synthesis(w, *n):
        return G.synthesis(w, noise_mode="random", half_dtype=half, noise=list(n))

    def discriminate(x):
        return D(x, None, half_dtype=half)

    assert _graphs(synthesis, ws, *noise)[:2] == (1, 0)
    with torch.no_grad():  # the inference cache and in-place epilogues must stay out of the graph
        assert _graphs(synthesis, ws.detach(), *noise)[:2] == (1, 0)
    img = torch.randn(4, 3, 16, 16)
    assert _graphs(discriminate, img)[:2] == (1, 0)
    D.requires_grad_(False)
    graphs, breaks, reasons = _graphs(discriminate, img.requires_grad_(True))
    assert (graphs, breaks) == (1, 0), reasons
    # the explicit generator is what used to break the graph, once per layer
    graphs, breaks, _ = _graphs(lambda w: G.synthesis(w, noise_mode="random", generator=torch.Generator()), ws)
    assert breaks >= 5


@pytest.mark.parametrize("kw", [dict(noise_mode="const"), dict(noise_mode="random", truncation_psi=0.7),
                                dict(noise_mode="const", half_dtype=torch.bfloat16)])
def test_inference_traces_as_one_graph(kw):
    """Rendering with FastOptions(compile=True) / generate.py --compile: the inference cache (a
    Python dict checked against weight versions) must not split the network at every layer."""
    G = tiny_g("skip").eval()
    z = torch.randn(4, 16)
    with torch.no_grad():
        graphs, breaks, reasons = _graphs(lambda z: G(z, None, **kw), z)
    assert (graphs, breaks) == (1, 0), reasons
