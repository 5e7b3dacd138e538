"""Training: `ae` (autoencoder), `latents` (encode a dataset), `dit` (the denoiser), `ground` (the grounder).

Every stage checkpoints and resumes; `--minutes` bounds one chunk of work so long runs survive the end of
a working session. Run with Debian's torch: `/usr/bin/python3 -m v4s_train.train ...` from training/.
"""
import argparse
import copy
import json
import math
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

from .data import ClipSampler, Dataset
from .model import Decoder, Denoiser, Encoder

HORIZON = 4
MAX_CONTEXT = 6
MAX_OFFSET = 48
K_CHOICES = [1, 2, 3, 4, 5, 6]
K_PROBS = [0.04, 0.08, 0.14, 0.24, 0.2, 0.3]


def log(msg, path=None):
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def to_float(frames_u8):
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [-1, 1]."""
    x = torch.from_numpy(np.asarray(frames_u8)).float().div_(127.5).sub_(1.0)
    return x.movedim(-1, -3).contiguous()


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------- autoencoder
def train_ae(args):
    os.makedirs(args.out, exist_ok=True)
    ds = Dataset(args.data).load_all()
    ck = os.path.join(args.out, "ae.pt")
    logf = os.path.join(args.out, "ae.log")
    enc, dec = Encoder(), Decoder()
    opt = torch.optim.AdamW(list(enc.parameters()) + list(dec.parameters()), lr=1e-3, weight_decay=0.0)
    step, spent = 0, 0.0
    if os.path.exists(ck):
        s = torch.load(ck)
        enc.load_state_dict(s["enc"]); dec.load_state_dict(s["dec"]); opt.load_state_dict(s["opt"])
        step, spent = s["step"], s["seconds"]
        log(f"resumed AE at step {step}", logf)
    rng = np.random.default_rng(step + 1)
    t_end = time.time() + args.minutes * 60
    t0 = time.time()
    while step < args.steps and time.time() < t_end:
        idx = np.sort(rng.choice(ds.n, size=args.batch, replace=False))
        x = to_float(ds.frames[idx])
        lr = 1e-3 * min(1.0, (step + 1) / 200) * (0.1 if step > 0.8 * args.steps else 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        y = dec(enc(x))
        loss = F.l1_loss(y, x) + F.mse_loss(y, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            with torch.no_grad():
                psnr = 10 * math.log10(4.0 / F.mse_loss(y, x).item())
            log(f"ae step {step}/{args.steps} loss {loss.item():.4f} psnr {psnr:.2f} dB "
                f"{(time.time() - t0) / 100:.3f}s/step", logf)
            t0 = time.time()
        if step % 500 == 0 or step >= args.steps:
            save_atomic({"enc": enc.state_dict(), "dec": dec.state_dict(), "opt": opt.state_dict(), "step": step,
                         "seconds": spent + (time.time() - t_end + args.minutes * 60)}, ck)
    # latent statistics for unit-variance scaling
    with torch.no_grad():
        idx = rng.choice(ds.n, size=min(4096, ds.n), replace=False)
        z = torch.cat([enc(to_float(ds.frames[np.sort(idx[i:i + 512])])) for i in range(0, len(idx), 512)])
        shift, scale = z.mean().item(), 1.0 / z.std().item()
    s = torch.load(ck)
    s.update({"shift": shift, "scale": scale, "step": step})
    save_atomic(s, ck)
    log(f"AE done at step {step}: latent shift {shift:.4f} scale {scale:.4f}", logf)


def load_ae(out):
    s = torch.load(os.path.join(out, "ae.pt"))
    enc, dec = Encoder(), Decoder()
    enc.load_state_dict(s["enc"]); dec.load_state_dict(s["dec"])
    enc.eval(); dec.eval()
    return enc, dec, s["shift"], s["scale"], s


def encode_dataset(args):
    """Write <data>/latents.f16 [N, 8, 8, 8] (scaled) and <data>/grid.u8 [N, 8, 8, C+1] category fractions."""
    enc, _, shift, scale, _ = load_ae(args.out)
    ds = Dataset(args.data)
    zpath = os.path.join(args.data, "latents.f16")
    z = np.lib.format.open_memmap(zpath + ".npy", mode="w+", dtype=np.float16, shape=(ds.n, 8, 8, 8))
    with torch.no_grad():
        for i in range(0, ds.n, 1024):
            x = to_float(ds.frames[i:i + 1024])
            z[i:i + len(x)] = ((enc(x) - shift) * scale).numpy().astype(np.float16)
            if (i // 1024) % 20 == 0:
                log(f"encoded {i + len(x)}/{ds.n}")
    z.flush()
    log(f"wrote {zpath}.npy")


# ---------------------------------------------------------------- denoiser
def grounding_target(masks, goal):
    """masks uint8 [B, H, 64, 64], goal [B] -> fraction of goal pixels per 8x8 cell [B, H, 8, 8]."""
    m = (masks == goal.reshape(-1, 1, 1, 1)).astype(np.float32)
    b, h, hh, ww = m.shape
    return m.reshape(b, h, 8, hh // 8, 8, ww // 8).mean(axis=(3, 5))


def make_denoiser():
    return Denoiser(zc=8, zh=8, d=128, depth=5, heads=4, n_actions=4, n_goals=6)


def grounding_loss(net, z, masks, goal):
    """BCE of the grounder on latents z [B, F, C, 8, 8] against the goal's cell fractions of masks [B, F, 64, 64]."""
    gt = torch.from_numpy(grounding_target(masks, goal))
    pr = net.ground_frames(z, torch.from_numpy(goal))
    return F.binary_cross_entropy(pr.clamp(1e-5, 1 - 1e-5), gt)


def migrate_denoiser_state(state, net):
    """Load a checkpoint of an older layout into `net`, returning what changed (for the log).

    - goal table of n_goals + 1 rows (null id == the last category): grows to n_goals + 2; the new null row
      and the last category both start from the old shared row, so the old model's behaviour is kept;
    - the per-patch grounding heads (`ground`, `ground_cur`) are dropped: `train ground` trains the grounder.
    """
    notes = []
    state = dict(state)
    ge = state.get("goal_emb.weight")
    want = net.goal_emb.weight.shape[0]
    if ge is not None and ge.shape[0] == want - 1:
        state["goal_emb.weight"] = torch.cat([ge, ge[-1:]], dim=0)
        notes.append(f"goal table {ge.shape[0]} -> {want} rows (null split from category {want - 2})")
    old = [k for k in state if k.startswith("ground.") or k.startswith("ground_cur.")]
    for k in old:
        del state[k]
    if old:
        notes.append(f"dropped the per-patch grounding heads ({len(old)} tensors)")
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected:
        raise ValueError(f"checkpoint has tensors the denoiser lacks: {unexpected}")
    if missing and any(not k.startswith("grounder.") for k in missing):
        raise ValueError(f"checkpoint lacks denoiser tensors: {missing}")
    if missing:
        notes.append("grounder not in the checkpoint (fresh)")
    return notes


def train_ground(args):
    """Train the grounder alone on clean latents (the denoiser frozen) and write it into dit.pt (net and ema).

    Samples single frames of the train split; the goal is a category present in the frame 75 % of the time,
    otherwise any category (learns "absent"). Latents get Gaussian noise (sigma up to 0.3) half of the time, so
    that the grounder also reads the slightly soft clean latents the sampler predicts for imagined frames.
    Reports BCE and cell IoU at 0.5 on dev frames every 500 steps.
    """
    torch.manual_seed(0)
    logf = os.path.join(args.out, "ground.log")
    ds = Dataset(args.data)
    ds.masks = np.ascontiguousarray(ds.masks)
    lat = np.load(os.path.join(args.data, "latents.f16.npy"))
    ck = os.path.join(args.out, "dit.pt")
    s = torch.load(ck)
    net, ema = make_denoiser(), make_denoiser()
    for n in migrate_denoiser_state(s["net"], net):
        log(f"net: {n}", logf)
    migrate_denoiser_state(s["ema"], ema)
    g = net.grounder
    if "grounder" in s:
        g.load_state_dict(s["grounder"]["state"])
    gstep = s.get("grounder", {}).get("step", 0)
    opt = torch.optim.AdamW(g.parameters(), lr=args.lr, weight_decay=0.0)
    if "grounder" in s and "opt" in s["grounder"]:
        opt.load_state_dict(s["grounder"]["opt"])
    # dev frames for validation, encoded with the autoencoder
    enc, _, shift, scale, _ = load_ae(args.out)
    dev = Dataset(args.dev)
    vrng = np.random.default_rng(7)
    vidx = np.sort(vrng.choice(dev.n, size=2048, replace=False))
    with torch.no_grad():
        vz = torch.cat([(enc(to_float(dev.frames[vidx[i:i + 512]])) - shift) * scale for i in range(0, 2048, 512)])
    vmask = np.asarray(dev.masks[vidx])
    vgoal = np.array([pick_goal(vrng, vmask[i], len(ds.categories)) for i in range(len(vidx))])
    vgt = torch.from_numpy(grounding_target(vmask[:, None], vgoal)[:, 0])

    def validate():
        with torch.no_grad():
            pr = g(vz, torch.from_numpy(vgoal))
            bce = F.binary_cross_entropy(pr.clamp(1e-5, 1 - 1e-5), vgt).item()
            p, t = pr > 0.5, vgt > 0.5
            iou = (p & t).sum().item() / max(1, (p | t).sum().item())
            mae_area = (pr.mean(dim=(1, 2)) - vgt.mean(dim=(1, 2))).abs().mean().item()
        return bce, iou, mae_area

    bce, iou, mae = validate()
    log(f"grounder at step {gstep}: dev BCE {bce:.4f} cell IoU@0.5 {iou:.3f} area MAE {mae:.4f}", logf)
    pz = pm = None
    if args.pred_mix > 0:
        t_bank = time.time()
        pz, pm = predicted_bank(ema, ds, lat, args.pred_batches)
        log(f"predicted-latent bank: {len(pz)} imagined frames from the frozen denoiser in {time.time() - t_bank:.0f} s; "
            f"{args.pred_mix:.0%} of each batch", logf)
    rng = np.random.default_rng(gstep + 99)
    t_end = time.time() + args.minutes * 60
    t0 = time.time()
    while gstep < args.steps and time.time() < t_end:
        idx = np.sort(rng.choice(ds.n, size=args.batch, replace=False))
        z = torch.from_numpy(lat[idx].astype(np.float32))
        noisy = torch.rand(args.batch) < 0.5
        sig = torch.rand(args.batch) * 0.3 * noisy.float()
        z = z + sig.view(-1, 1, 1, 1) * torch.randn_like(z)
        m = ds.masks[idx]
        if pz is not None:
            n_pred = int(round(args.pred_mix * args.batch))
            pidx = rng.choice(len(pz), size=n_pred, replace=False)
            z = torch.cat([z[:args.batch - n_pred], torch.from_numpy(pz[pidx])])
            m = np.concatenate([m[:args.batch - n_pred], pm[pidx]])
        goal = np.array([pick_goal(rng, m[i], len(ds.categories)) for i in range(len(m))])
        gt = torch.from_numpy(grounding_target(m[:, None], goal)[:, 0])
        lr = args.lr * min(1.0, (gstep + 1) / 200)
        if gstep > 0.7 * args.steps:
            lr *= 0.1
        for pg in opt.param_groups:
            pg["lr"] = lr
        pr = g(z, torch.from_numpy(goal))
        loss = F.binary_cross_entropy(pr.clamp(1e-5, 1 - 1e-5), gt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        gstep += 1
        if gstep % 100 == 0:
            log(f"ground step {gstep}/{args.steps} loss {loss.item():.4f} {(time.time() - t0) / 100:.3f}s/step", logf)
            t0 = time.time()
        if gstep % 500 == 0 or gstep >= args.steps or time.time() >= t_end:
            bce, iou, mae = validate()
            log(f"grounder at step {gstep}: dev BCE {bce:.4f} cell IoU@0.5 {iou:.3f} area MAE {mae:.4f}", logf)
            ema.grounder.load_state_dict(g.state_dict())
            out = dict(s)
            out.update({"net": net.state_dict(), "ema": ema.state_dict(),
                        "grounder": {"state": g.state_dict(), "opt": opt.state_dict(), "step": gstep}})
            out.pop("opt", None)  # the denoiser's optimizer state no longer matches the migrated layout
            save_atomic(out, ck)
    log(f"grounder chunk ended at step {gstep}", logf)


def predicted_bank(net, ds, lat, batches, seed=5):
    """Clean-latent predictions of the frozen denoiser for sampled training clips, as the runtime makes them
    (flow Euler, 2 steps from pure noise, conditional branch), with the true target masks.
    Returns latents [N, C, 8, 8] and masks [N, 64, 64]."""
    sampler = ClipSampler(ds, HORIZON, MAX_OFFSET, seed=seed)
    krng = np.random.default_rng(seed)
    zs, ms = [], []
    net.eval()
    with torch.no_grad():
        for _ in range(batches):
            k = int(krng.choice(K_CHOICES, p=K_PROBS))
            ctx_idx, tgt_idx, cpos, acts, goal, tmask = sampler.batch(32, k)
            b = len(goal)
            ctx = torch.from_numpy(lat[ctx_idx].astype(np.float32))
            tpos = torch.arange(1, HORIZON + 1, dtype=torch.float32).repeat(b, 1)
            ones = torch.ones(b)
            x = torch.randn(b, HORIZON, *ctx.shape[2:])
            args = (ctx, torch.from_numpy(cpos), tpos, torch.from_numpy(acts), torch.from_numpy(goal), ones, ones)
            x0, _, _ = net(x, ones, *args)
            x = 0.5 * x + 0.5 * x0  # Euler from t = 1 to t = 0.5 with the x0 prediction
            x0, _, _ = net(x, 0.5 * ones, *args)
            zs.append(x0.reshape(-1, *x0.shape[2:]).numpy())
            ms.append(tmask.reshape(-1, *tmask.shape[2:]))
    return np.concatenate(zs), np.concatenate(ms)


def pick_goal(rng, mask, num_cats):
    """A category present in the mask 75 % of the time (when any is), else any category 1..num_cats."""
    present = np.unique(mask)
    present = present[present > 0]
    if len(present) > 0 and rng.random() < 0.75:
        return int(rng.choice(present))
    return int(rng.integers(1, num_cats + 1))


def train_dit(args):
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    logf = os.path.join(args.out, "dit.log")
    ds = Dataset(args.data)
    ds.masks = np.ascontiguousarray(ds.masks)
    lat = np.load(os.path.join(args.data, "latents.f16.npy"))
    sampler = ClipSampler(ds, HORIZON, MAX_OFFSET, seed=int(time.time()))
    net = make_denoiser()
    ema = copy.deepcopy(net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.01)
    ck = os.path.join(args.out, "dit.pt")
    step, seconds = 0, 0.0
    if os.path.exists(ck):
        s = torch.load(ck)
        migrate_denoiser_state(s["net"], net); migrate_denoiser_state(s["ema"], ema)
        if "opt" in s:
            opt.load_state_dict(s["opt"])
        step, seconds = s["step"], s["seconds"]
        log(f"resumed denoiser at step {step} ({seconds / 60:.1f} min trained so far)", logf)
    nparams = sum(p.numel() for p in net.parameters())
    log(f"denoiser: {nparams / 1e6:.2f} M parameters; batch {args.batch}; target {args.steps} steps", logf)
    rng = np.random.default_rng(step + 12345)
    t_end = time.time() + args.minutes * 60
    chunk_start = time.time()
    t0, acc = time.time(), [0.0, 0.0, 0]
    while step < args.steps and time.time() < t_end:
        k = int(rng.choice(K_CHOICES, p=K_PROBS))
        b = args.batch
        ctx_idx, tgt_idx, cpos, acts, goal, tmask = sampler.batch(b, k)
        ctx_z = torch.from_numpy(lat[ctx_idx].astype(np.float32))
        tgt_z = torch.from_numpy(lat[tgt_idx].astype(np.float32))
        cpos_t = torch.from_numpy(cpos)
        acts_t = torch.from_numpy(acts)
        goal_t = torch.from_numpy(goal)
        tpos = torch.arange(1, HORIZON + 1, dtype=torch.float32).repeat(b, 1)
        # joint CFG training: drop both (10 %), context only (5 %), instruction only (5 %)
        r = torch.rand(b)
        cm = (~((r < 0.10) | ((r >= 0.10) & (r < 0.15)))).float()
        im = (~((r < 0.10) | ((r >= 0.15) & (r < 0.20)))).float()
        sig = torch.sigmoid(torch.randn(b) * 1.0)
        sig = torch.where(torch.rand(b) < 0.3, torch.rand(b), sig).clamp(0.02, 1.0)
        noise = torch.randn_like(tgt_z)
        x_t = (1 - sig.view(b, 1, 1, 1, 1)) * tgt_z + sig.view(b, 1, 1, 1, 1) * noise
        pred, _, _ = net(x_t, sig, ctx_z, cpos_t, tpos, acts_t, goal_t, cm, im)
        w = 1.0 + 0.0 * sig
        l_x0 = ((pred - tgt_z) ** 2).mean(dim=(1, 2, 3, 4))
        l_x0 = (l_x0 * w).mean()
        # the grounder learns on clean latents (targets and the newest context frame); see `train_ground`
        cmask = ds.masks[ctx_idx[:, -1]][:, None]
        l_g = grounding_loss(net, torch.cat([tgt_z, ctx_z[:, -1:]], dim=1),
                             np.concatenate([tmask, cmask], axis=1), goal)
        loss = l_x0 + 0.5 * l_g
        lr = args.lr * min(1.0, (step + 1) / 300)
        if step > args.decay_from * args.steps:
            frac = (step - args.decay_from * args.steps) / ((1 - args.decay_from) * args.steps)
            lr *= 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
            lr = max(lr, args.lr * 0.02)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.mul_(decay).add_(pn.detach(), alpha=1 - decay)
        step += 1
        acc[0] += l_x0.item(); acc[1] += l_g.item(); acc[2] += 1
        if step % 50 == 0:
            log(f"dit step {step}/{args.steps} x0 {acc[0] / acc[2]:.4f} ground {acc[1] / acc[2]:.4f} "
                f"lr {lr:.2e} {(time.time() - t0) / acc[2]:.2f}s/step", logf)
            acc = [0.0, 0.0, 0]
            t0 = time.time()
        if step % 250 == 0 or step >= args.steps or time.time() >= t_end:
            now = time.time()
            save_atomic({"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step,
                         "seconds": seconds + (now - chunk_start)}, ck)
            seconds += now - chunk_start
            chunk_start = now
    log(f"chunk ended at step {step}; total training wall clock {seconds / 60:.1f} min", logf)


def main():
    p = argparse.ArgumentParser(prog="v4s_train.train")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("ae", "latents", "dit", "ground"):
        q = sub.add_parser(name)
        q.add_argument("--data", required=True, help="dataset folder written by `v4s dataset`")
        q.add_argument("--out", default="ckpt", help="checkpoint folder")
        q.add_argument("--minutes", type=float, default=75.0, help="stop this chunk after so many minutes")
        q.add_argument("--batch", type=int, default={"ae": 64, "ground": 256}.get(name, 32))
        q.add_argument("--steps", type=int, default={"ae": 3000, "ground": 4000}.get(name, 12000))
        q.add_argument("--lr", type=float, default=3e-4)
        q.add_argument("--decay-from", type=float, default=0.7, dest="decay_from")
        q.add_argument("--threads", type=int, default=2)
        if name == "ground":
            q.add_argument("--dev", default="data/dev", help="dataset folder of dev scenes for validation")
            q.add_argument("--pred-mix", type=float, default=0.0, dest="pred_mix",
                           help="share of each batch taken from the denoiser's own clean-latent predictions")
            q.add_argument("--pred-batches", type=int, default=96, dest="pred_batches",
                           help="clip batches (32 clips x horizon frames) in the bank of predictions")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    {"ae": train_ae, "latents": encode_dataset, "dit": train_dit, "ground": train_ground}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
