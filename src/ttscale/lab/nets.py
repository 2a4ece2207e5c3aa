"""Neural nets of the lab world: a word-level text encoder, a text-conditional U-Net, and two judges.

Small on purpose (1-10M parameters at 32x32) so they train in minutes on one GPU and sample on a
laptop CPU. Attention is written out (no `nn.TransformerEncoder`, whose eval-mode fast path
differs from training mode with padding masks).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ttscale.lab.world import COLORS, NUMBER_WORDS, PLURALS, RELATIONS, SHAPES

MAX_TOKENS = 12
_WORDS = sorted(
    {"<pad>", "<unk>", "a", "an", "photo", "of", "and"}
    | set(SHAPES)
    | set(PLURALS.values())
    | set(COLORS)
    | set(NUMBER_WORDS.values())
    | {w for r in RELATIONS for w in r.split()}
)
VOCAB = {w: i for i, w in enumerate(_WORDS)}


def tokenize(prompts: Sequence[str]) -> torch.Tensor:
    """Word-level ids, padded with 0; unknown words map to <unk> so any prompt encodes."""
    ids = torch.zeros(len(prompts), MAX_TOKENS, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        words = prompt.lower().split()[:MAX_TOKENS]
        ids[row, : len(words)] = torch.tensor([VOCAB.get(w, VOCAB["<unk>"]) for w in words], dtype=torch.long)
    return ids


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, n, d = x.shape
        ctx = x if context is None else context
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn_mask = None if mask is None else mask[:, None, None, :]  # True = attend
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.ModuleList):
    """Pre-norm attention + MLP; a ModuleList so its weights are named blocks.<i>.<0-3> (the shipped files' keys)."""

    def __init__(self, dim: int, heads: int):
        super().__init__([nn.LayerNorm(dim), Attention(dim, heads), nn.LayerNorm(dim), _mlp(dim)])

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n1, attn, n2, mlp = self
        h = h + attn(n1(h), mask=mask)
        return h + mlp(n2(h))


class TextEncoder(nn.Module):
    """Token + position embeddings and a few pre-norm transformer layers; returns tokens and a pooled vector."""

    def __init__(self, dim: int, layers: int, heads: int = 4):
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), dim)
        self.pos = nn.Parameter(torch.randn(MAX_TOKENS, dim) * 0.02)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = ids != 0
        h = self.embed(ids) + self.pos
        for block in self.blocks:
            h = block(h, mask)
        h = self.norm(h)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return h, pooled, mask


def _mlp(dim: int, mult: int = 4) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], -1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(8, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 2 * cout)
        self.n2, self.c2 = nn.GroupNorm(8, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, 1)
        h = self.n2(h) * (1 + scale) + shift
        return self.skip(x) + self.c2(F.silu(h))


class AttnBlock(nn.Module):
    """Self-attention over pixels, then cross-attention to the prompt's tokens."""

    def __init__(self, ch: int, context_dim: int, heads: int = 4):
        super().__init__()
        self.n1, self.self_attn = nn.GroupNorm(8, ch), Attention(ch, heads)
        self.n2, self.cross = nn.GroupNorm(8, ch), Attention(ch, heads, context_dim)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = self.n1(x).flatten(2).transpose(1, 2)
        x = x + self.self_attn(seq).transpose(1, 2).view(b, c, h, w)
        seq = self.n2(x).flatten(2).transpose(1, 2)
        return x + self.cross(seq, ctx, mask).transpose(1, 2).view(b, c, h, w)


@dataclass(frozen=True)
class UNetConfig:
    base: int = 32  # channels at full resolution; x2 and x4 at 1/2 and 1/4
    text_dim: int = 64
    text_layers: int = 2
    resolution: int = 32

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class FlowUNet(nn.Module):
    """Predicts the rectified-flow velocity (noise - image) from x_t, t and the prompt.

    A learned null sequence stands in for the prompt when it is dropped (classifier-free guidance).
    """

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        c, e, d = cfg.base, cfg.base * 4, cfg.text_dim
        self.text = TextEncoder(d, cfg.text_layers)
        self.null_tokens = nn.Parameter(torch.randn(MAX_TOKENS, d) * 0.02)
        self.time = nn.Sequential(nn.Linear(c, e), nn.SiLU(), nn.Linear(e, e))
        self.pool = nn.Linear(d, e)
        self.inp = nn.Conv2d(3, c, 3, padding=1)
        self.d1 = ResBlock(c, c, e)
        self.d2 = ResBlock(c, 2 * c, e)
        self.a2 = AttnBlock(2 * c, d)
        self.d3 = ResBlock(2 * c, 4 * c, e)
        self.a3 = AttnBlock(4 * c, d)
        self.m1, self.ma, self.m2 = ResBlock(4 * c, 4 * c, e), AttnBlock(4 * c, d), ResBlock(4 * c, 4 * c, e)
        self.u3 = ResBlock(8 * c, 4 * c, e)
        self.ua3 = AttnBlock(4 * c, d)
        self.u2 = ResBlock(6 * c, 2 * c, e)
        self.ua2 = AttnBlock(2 * c, d)
        self.u1 = ResBlock(3 * c, c, e)
        last = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)  # type: ignore[arg-type]
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), last)

    def encode(
        self, ids: torch.Tensor, drop: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prompt tokens -> (context, pooled, mask); rows where `drop` is True get the null condition."""
        ctx, pooled, mask = self.text(ids)
        if drop is not None:
            null = self.null_tokens.expand_as(ctx)
            keep = ~drop[:, None, None]
            ctx = torch.where(keep, ctx, null)
            pooled = torch.where(keep[:, 0], pooled, null.mean(1))
            mask = torch.where(keep[:, :, 0], mask, torch.ones_like(mask))
        return ctx, pooled, mask

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ctx = self.null_tokens.expand(batch, -1, -1)
        mask = torch.ones(batch, MAX_TOKENS, dtype=torch.bool, device=ctx.device)
        return ctx, ctx.mean(1), mask

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, cond: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        ctx, pooled, mask = cond
        emb = self.time(timestep_embedding(t, self.cfg.base)) + self.pool(pooled)
        h1 = self.d1(self.inp(x), emb)
        h2 = self.a2(self.d2(F.avg_pool2d(h1, 2), emb), ctx, mask)
        h3 = self.a3(self.d3(F.avg_pool2d(h2, 2), emb), ctx, mask)
        m = self.m2(self.ma(self.m1(h3, emb), ctx, mask), emb)
        u = self.ua3(self.u3(torch.cat([m, h3], 1), emb), ctx, mask)
        u = self.ua2(self.u2(torch.cat([F.interpolate(u, scale_factor=2.0), h2], 1), emb), ctx, mask)
        u = self.u1(torch.cat([F.interpolate(u, scale_factor=2.0), h1], 1), emb)
        return self.out(u)


class ImageEncoder(nn.Module):
    """A small CNN: 32x32 image -> a grid x grid token grid (the judges' eyes).

    Positions are optional because cross-attention is blind to where a token sits: without them a judge
    can only guess "left of" from padding effects.
    """

    def __init__(self, base: int, out_dim: int, grid: int = 4, positions: bool = False):
        super().__init__()
        if grid not in (4, 8):
            raise ValueError(f"grid must be 4 or 8, not {grid}")
        chans = [3, base, 2 * base, 4 * base]
        pools = 3 if grid == 4 else 2
        self.resolution = grid * 2**pools  # the side of the images it is built for: 32 either way
        layers: list[nn.Module] = []
        for stage, (cin, cout) in enumerate(itertools.pairwise(chans)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU()]
            layers += [nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU()]
            if stage < pools:
                layers.append(nn.AvgPool2d(2))
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(4 * base, out_dim)
        self.pos = nn.Parameter(torch.randn(grid * grid, out_dim) * 0.02) if positions else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features as tokens (B, grid*grid, D) for cross-attention, from images in [0, 1]."""
        h = self.features(images * 2 - 1)
        tokens = self.proj(h.flatten(2).transpose(1, 2))
        return tokens if self.pos is None else tokens + self.pos


@dataclass(frozen=True)
class JudgeConfig:
    """A judge's shape. The defaults are the plain judge; `grid`, `positions` and `fusion_layers` add sight."""

    base: int = 32
    dim: int = 128
    text_layers: int = 2
    grid: int = 4  # image tokens per side
    positions: bool = False  # 2D position embeddings on the image tokens
    fusion_layers: int = 0  # joint self-attention over image and prompt tokens after the cross-attention
    locate: bool = False  # each prompt token also reads the centroid of where it looks (see YesNoJudge.judge)
    relate: bool = False  # with locate: the answer also reads the subject-minus-object offset (YesNoJudge._offset)

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)


class YesNoJudge(nn.Module):
    """lab-visa: reads the prompt, looks at the image through cross-attention, answers a 'yes' logit.

    With `fusion_layers`, image and prompt tokens then attend to each other jointly, as in a VLM, so
    the judge can relate two attended regions (which object is left of which, which colour sits on which shape).
    """

    coords: torch.Tensor  # (grid * grid, 2) cell centres in [-1, 1], x then y
    is_shape: torch.Tensor  # (vocabulary,) True for shape words, singular or plural

    def __init__(self, cfg: JudgeConfig):
        super().__init__()
        self.cfg = cfg
        self.image = ImageEncoder(cfg.base, cfg.dim, cfg.grid, cfg.positions)
        self.text = TextEncoder(cfg.dim, cfg.text_layers)
        self.look = nn.ModuleList([Attention(cfg.dim, 4) for _ in range(2)])
        self.norms = nn.ModuleList([nn.LayerNorm(cfg.dim) for _ in range(2)])
        self.fusion = nn.ModuleList(TransformerBlock(cfg.dim, 4) for _ in range(cfg.fusion_layers))
        self.head = nn.Sequential(nn.LayerNorm(cfg.dim), _mlp(cfg.dim), nn.GELU(), nn.Linear(cfg.dim, 1))
        self.locator = (
            nn.ModuleList([nn.Linear(cfg.dim, cfg.dim), nn.Linear(cfg.dim, cfg.dim), nn.Linear(2, cfg.dim)])
            if cfg.locate
            else nn.ModuleList()
        )
        if cfg.relate and not cfg.locate:
            raise ValueError("JudgeConfig.relate needs locate=True: it compares where the prompt's objects are")
        self.relation = nn.Linear(cfg.dim, 2) if cfg.relate else None
        shape_ids = [VOCAB[w] for w in (*SHAPES, *PLURALS.values())]
        self.register_buffer(
            "is_shape", torch.isin(torch.arange(len(VOCAB)), torch.tensor(shape_ids)), persistent=False
        )
        axis = torch.linspace(-1, 1, cfg.grid)
        ys, xs = torch.meshgrid(axis, axis, indexing="ij")
        self.register_buffer("coords", torch.stack([xs.flatten(), ys.flatten()], -1), persistent=False)

    def forward(self, images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.judge(images, ids)[0]

    def judge(self, images: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The yes-logit, and with `locate` where each prompt token looks: (B, tokens, grid * grid) weights.

        The weights' centroid is added to the token, so "left of" compares two coordinates instead of
        having to discover them; training supervises the weights with the rendered scenes' grounding maps,
        since a yes/no answer alone gives no pressure to look at the right place (mean attention suffices
        to tell whether a circle is there at all).
        """
        grid = self.image(images)
        tokens, _, mask = self.text(ids)
        for norm, attn in zip(self.norms, self.look, strict=True):
            tokens = tokens + attn(norm(tokens), grid)
        where = None
        if self.locator:
            query, key, place = self.locator
            where = torch.softmax(query(tokens) @ key(grid).transpose(1, 2) / self.cfg.dim**0.5, -1)
            tokens = tokens + place(where @ self.coords)
        if self.fusion:
            joint = torch.cat([grid, tokens], 1)
            joint_mask = torch.cat([torch.ones_like(grid[..., 0], dtype=torch.bool), mask], 1)
            for block in self.fusion:
                joint = block(joint, joint_mask)
            tokens = joint[:, grid.shape[1] :]
        pooled = (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        logit = self.head(pooled).squeeze(-1)
        if self.relation is not None and where is not None:
            logit = logit + (self.relation(pooled) * self._offset(where, ids)).sum(-1)
        return logit, where

    def _offset(self, where: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(B, 2): centroid of the first shape word's gaze minus the last one's (zero with fewer than two).

        A yes/no head on pooled tokens is symmetric in the objects, and learning which is the subject from
        scratch stalls (loss stays at log 2 on relation-only data); prompts name the subject first, so the
        offset is read here and the prompt decides (through `relation`) what sign "yes" needs.
        """
        shape = self.is_shape[ids].float()  # (B, T)
        order = torch.arange(ids.shape[1], device=ids.device, dtype=torch.float32)
        first = (order == (shape * (ids.shape[1] - order)).argmax(1, keepdim=True)).float()  # no one_hot: it syncs
        last = (order == (shape * (order + 1)).argmax(1, keepdim=True)).float()
        two = (shape.sum(1, keepdim=True) >= 2).float()
        centroids = where @ self.coords  # (B, T, 2)
        return two * ((first - last)[..., None] * centroids).sum(1)


class DualEncoder(nn.Module):
    """lab-clip: separate image and text towers into one embedding space (cosine similarity)."""

    def __init__(self, cfg: JudgeConfig):
        super().__init__()
        self.cfg = cfg
        self.image = ImageEncoder(cfg.base, cfg.dim, cfg.grid, cfg.positions)
        self.image_head = nn.Sequential(nn.Flatten(), nn.Linear(cfg.grid**2 * cfg.dim, cfg.dim))
        self.text = TextEncoder(cfg.dim, cfg.text_layers)
        self.text_head = nn.Linear(cfg.dim, cfg.dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_head(self.image(images)), dim=-1)

    def embed_texts(self, ids: torch.Tensor) -> torch.Tensor:
        _, pooled, _ = self.text(ids)
        return F.normalize(self.text_head(pooled), dim=-1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
