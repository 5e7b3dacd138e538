"""The shipped world model, Video4Spatial's design scaled down to a 2-core CPU.

* A small convolutional autoencoder maps 64x64 RGB frames to 8x8x8 latents (smooth outputs, few tokens).
* A transformer denoiser sees clean context latents and noisy target latents as tokens of one sequence
  (16 tokens a frame: 2x2 latent patches).
* 3-D RoPE: the frame term of each token's position is the frame's step offset relative to the newest
  context frame (non-contiguous context keeps its gaps), the other two terms are the token's row/column.
* Block-causal attention: context tokens attend to context only, target tokens to context and targets.
  The context stream therefore does not depend on the noisy targets or the noise level, so its keys and
  values can be computed once per decision.
* Conditioning: one action token per target frame, an optional goal-category token, and the noise level,
  through adaLN on target tokens. `context_mask` / `instruction_mask` (1 keep, 0 drop) switch in learned
  null embeddings: joint classifier-free guidance is trained by dropping them together or apart.
* Residual clean-latent prediction (x0 = newest context latent + network output), rectified-flow noise.
* Auxiliary grounding head: a small goal-conditioned convolutional grounder maps a latent frame to an 8x8 map
  of the goal category's presence (fraction of each cell covered). The same grounder reads the current view
  (the newest context latent, `grounding_current`) and each imagined frame (the predicted clean latent,
  `grounding`), so imagined and current goal scores are on one scale.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- autoencoder
class Encoder(nn.Module):
    """64x64x3 in [-1,1] -> 8x8xzc. Narrow at high resolution: a 2-core CPU trains it in minutes."""

    def __init__(self, zc=8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 24, 4, 2, 1), nn.SiLU(),    # 32
            nn.Conv2d(24, 48, 4, 2, 1), nn.SiLU(),   # 16
            nn.Conv2d(48, 64, 4, 2, 1), nn.SiLU(),   # 8
            nn.Conv2d(64, 64, 3, 1, 1), nn.SiLU(),
            nn.Conv2d(64, zc, 1),
        )

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, zc=8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(zc, 64, 3, 1, 1), nn.SiLU(),
            nn.Conv2d(64, 64, 3, 1, 1), nn.SiLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(64, 48, 3, 1, 1), nn.SiLU(),  # 16
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(48, 24, 3, 1, 1), nn.SiLU(),  # 32
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(24, 16, 3, 1, 1), nn.SiLU(),  # 64
            nn.Conv2d(16, 3, 3, 1, 1),
        )

    def forward(self, z):
        return self.net(z)


class ScaledEncoder(nn.Module):
    """Export wrapper: frames in [-1,1] -> latents * scale (unit variance)."""

    def __init__(self, enc, scale, shift):
        super().__init__()
        self.enc = enc
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))

    def forward(self, frames):
        return (self.enc(frames) - self.shift) * self.scale


class ScaledDecoder(nn.Module):
    def __init__(self, dec, scale, shift):
        super().__init__()
        self.dec = dec
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))

    def forward(self, latents):
        return self.dec(latents / self.scale + self.shift).clamp(-1.0, 1.0)


# ---------------------------------------------------------------- denoiser
def rope_angles(pos, dim, base):
    """pos [..., N] float -> angles [..., N, dim/2]."""
    freqs = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    return pos.unsqueeze(-1) * freqs


def apply_rope(x, cos, sin):
    """x [B, heads, N, d]; cos/sin [B, 1, N, d/2] (pairs are (even, odd) interleaved as halves)."""
    d2 = x.shape[-1] // 2
    x1, x2 = x[..., :d2], x[..., d2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, d, heads, mlp=4):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.ln2 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, mlp * d), nn.GELU(), nn.Linear(mlp * d, d))
        # adaLN for target tokens: shift/scale/gate for attention and MLP, zero-initialised
        self.ada = nn.Linear(d, 6 * d)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def split(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.heads, -1).transpose(1, 2)

    def attend(self, q, k, v):
        d = q.shape[-1]
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        return a @ v

    def context_kv(self, c, ccos, csin):
        """Context stream of this block: returns (new context tokens, k_ctx, v_ctx)."""
        h = self.ln1(c)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        q, k, v = self.split(q), self.split(k), self.split(v)
        q, k = apply_rope(q, ccos, csin), apply_rope(k, ccos, csin)
        o = self.attend(q, k, v).transpose(1, 2).reshape(c.shape)
        c = c + self.proj(o)
        c = c + self.mlp(self.ln2(c))
        return c, k, v

    def target(self, x, cond, tcos, tsin, kc, vc):
        s1, sc1, g1, s2, sc2, g2 = self.ada(cond).chunk(6, dim=-1)
        h = self.ln1(x) * (1 + sc1) + s1
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        q, k, v = self.split(q), self.split(k), self.split(v)
        q, k = apply_rope(q, tcos, tsin), apply_rope(k, tcos, tsin)
        k = torch.cat([kc, k], dim=2)
        v = torch.cat([vc, v], dim=2)
        o = self.attend(q, k, v).transpose(1, 2).reshape(x.shape)
        x = x + (1 + g1) * self.proj(o)
        h = self.ln2(x) * (1 + sc2) + s2
        x = x + (1 + g2) * self.mlp(h)
        return x


class Grounder(nn.Module):
    """Goal-category presence per cell of a latent frame: [B, C, 8, 8] latent + goal id -> [B, 8, 8] in [0, 1].

    Three 3x3 convolutions (a 7x7-cell receptive field) with the goal as FiLM on the first two. Its own goal
    table: 0 = none, 1..n_goals = categories, n_goals + 1 = null.
    """

    def __init__(self, zc=8, n_goals=6, w=64):
        super().__init__()
        self.emb = nn.Embedding(n_goals + 2, 4 * w)
        nn.init.zeros_(self.emb.weight)
        self.c1 = nn.Conv2d(zc, w, 3, padding=1)
        self.c2 = nn.Conv2d(w, w, 3, padding=1)
        self.c3 = nn.Conv2d(w, w, 3, padding=1)
        self.out = nn.Conv2d(w, 1, 1)
        self.w = w

    def forward(self, z, goal):
        s1, b1, s2, b2 = self.emb(goal).unsqueeze(-1).unsqueeze(-1).chunk(4, dim=1)
        h = F.silu(self.c1(z) * (1 + s1) + b1)
        h = F.silu(self.c2(h) * (1 + s2) + b2)
        h = F.silu(self.c3(h))
        return torch.sigmoid(self.out(h)).squeeze(1)


class Denoiser(nn.Module):
    """Inputs and outputs follow docs/model-package.md (tensor names in export.py)."""

    def __init__(self, zc=8, zh=8, d=128, depth=6, heads=4, n_actions=4, n_goals=7, patch=2, grid_cells=2):
        super().__init__()
        self.zc, self.zh, self.p, self.d, self.heads = zc, zh, patch, d, heads
        self.g = zh // patch  # tokens per side
        self.tok = self.g * self.g
        pd = zc * patch * patch
        self.inp_ctx = nn.Linear(pd, d)
        self.inp_tgt = nn.Linear(pd, d)
        self.null_ctx = nn.Parameter(torch.zeros(self.tok, d))
        self.act_emb = nn.Embedding(n_actions + 1, d)   # last id = null
        # 0 = none, 1..n_goals = categories, n_goals + 1 = null (dropped instruction). The shipped package was
        # trained with an off-by-one here (null == the last category, tv); fixed for the next training run.
        self.goal_emb = nn.Embedding(n_goals + 2, d)
        self.n_actions, self.n_goals = n_actions, n_goals
        self.t_mlp = nn.Sequential(nn.Linear(64, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(depth)])
        self.ln_out = nn.LayerNorm(d)
        self.out = nn.Linear(d, pd)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # grounding of a latent frame: the current view (newest context) and each imagined frame's clean latent
        self.grounder = Grounder(zc, n_goals)
        hd = d // heads
        self.dt, self.dy = hd // 2, hd // 4  # RoPE split of a head: frame / row / column
        self.dx = hd - self.dt - self.dy

    # --- helpers
    def patchify(self, z):
        """[B, F, C, h, w] -> [B, F*tok, C*p*p]"""
        b, f, c, h, w = z.shape
        p, g = self.p, self.g
        z = z.reshape(b, f, c, g, p, g, p).permute(0, 1, 3, 5, 2, 4, 6)
        return z.reshape(b, f * g * g, c * p * p)

    def unpatchify(self, t, f):
        b = t.shape[0]
        p, g, c = self.p, self.g, self.zc
        t = t.reshape(b, f, g, g, c, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return t.reshape(b, f, c, g * p, g * p)

    def rope(self, fpos):
        """fpos [B, F] frame positions -> cos, sin [B, 1, F*tok, hd/2]."""
        b, f = fpos.shape
        g = self.g
        rows = torch.arange(g, dtype=torch.float32).view(1, 1, g, 1).expand(b, f, g, g)
        cols = torch.arange(g, dtype=torch.float32).view(1, 1, 1, g).expand(b, f, g, g)
        ft = fpos.view(b, f, 1, 1).expand(b, f, g, g)
        at = rope_angles(ft.reshape(b, -1), self.dt, 200.0)
        ay = rope_angles(rows.reshape(b, -1), self.dy, 100.0)
        ax = rope_angles(cols.reshape(b, -1), self.dx, 100.0)
        ang = torch.cat([at, ay, ax], dim=-1).unsqueeze(1)
        return torch.cos(ang), torch.sin(ang)

    def t_embed(self, t):
        half = 32
        freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=torch.float32) / half)
        a = (t * 1000.0).unsqueeze(-1) * freqs
        return self.t_mlp(torch.cat([torch.sin(a), torch.cos(a)], dim=-1))

    # --- the two streams (kept apart so the context stream can be exported and cached on its own)
    def context_stream(self, context, context_positions, context_mask):
        b, k = context.shape[:2]
        c = self.inp_ctx(self.patchify(context))
        m = context_mask.view(b, 1, 1)
        null = self.null_ctx.unsqueeze(0).repeat(1, k, 1)
        c = m * c + (1 - m) * null
        ccos, csin = self.rope(context_positions * m.view(b, 1))
        kvs = []
        for blk in self.blocks:
            c, kk, vv = blk.context_kv(c, ccos, csin)
            kvs.append((kk, vv))
        return kvs

    def target_stream(self, kvs, x_t, t, target_positions, actions, goal, instruction_mask, base):
        b, h = x_t.shape[:2]
        x = self.inp_tgt(self.patchify(x_t))
        im = instruction_mask.view(b, 1)
        null_a = torch.full_like(actions, self.n_actions)
        a = torch.where(im > 0.5, actions, null_a)
        null_g = torch.full_like(goal, self.n_goals + 1)
        g = torch.where(instruction_mask > 0.5, goal, null_g)
        cond_f = self.act_emb(a) + self.goal_emb(g).unsqueeze(1) + self.t_embed(t).unsqueeze(1)  # [B,H,d]
        cond = cond_f.unsqueeze(2).expand(b, h, self.tok, self.d).reshape(b, h * self.tok, self.d)
        x = x + cond
        tcos, tsin = self.rope(target_positions)
        for blk, (kc, vc) in zip(self.blocks, kvs):
            x = blk.target(x, cond, tcos, tsin, kc, vc)
        x = self.ln_out(x)
        pred = self.unpatchify(self.out(x), h) + base.unsqueeze(1)
        return pred, self.ground_frames(pred, goal)

    def ground_frames(self, z, goal):
        """z [B, F, C, h, w] latents, goal [B] -> [B, F, h, w] goal presence per cell (the grounder per frame)."""
        b, f = z.shape[:2]
        g = goal.view(b, 1).expand(b, f).reshape(b * f)
        return self.grounder(z.reshape(b * f, *z.shape[2:]), g).reshape(b, f, *z.shape[3:])

    def current_grounding(self, newest, goal, instruction_mask=None):
        """newest [B, C, h, w] context latent -> [B, h, w] goal presence per cell (instruction_mask: unused,
        the goal is always given to the grounder; kept for the exported signature)."""
        return self.grounder(newest, goal)

    def forward(self, x_t, t, context, context_positions, target_positions, actions, goal, context_mask,
                instruction_mask):
        kvs = self.context_stream(context, context_positions, context_mask)
        base = context[:, -1] * context_mask.view(-1, 1, 1, 1)  # residual on the newest context latent
        pred, gr = self.target_stream(kvs, x_t, t, target_positions, actions, goal, instruction_mask, base)
        return pred, gr, self.current_grounding(context[:, -1], goal, instruction_mask)
