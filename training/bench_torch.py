"""The PyTorch eager reference of `npm run bench` (section 4): the decision the SDK computes, as a user would
run it in PyTorch: the same network, weights, sampler, guidance, batch layout, threads and inputs.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 training/bench_torch.py --model models/v4s-builtin-small \
      --candidates 1,4,8,16 --steps 4,8,16 --threads 2 --repeats 3

Weights: read from the package's own ONNX files (encoder.onnx, decoder.onnx, denoiser.onnx) into the model of
training/v4s_train/model.py, then checked against the package's parity.json (the PyTorch outputs recorded at
export), so the reference is the shipped model and needs no training checkpoint.

One decision, timed like the SDK's `imagine()` (warm-up calls excluded, median of --repeats):
  encode  uint8 HWC frames -> [-1, 1] CHW -> encoder -> context latents; the batch's conditioning rows
  denoise `steps` network evaluations at batch branches x candidates, rows [null branch: candidates,
          conditional branch: candidates] (joint CFG, omega from the manifest), flow-matching Euler with x0
          prediction: v = (x_t - x0_hat) / sigma, x <- x + (sigma_next - sigma) v
  decode  decoder on candidates x horizon latents -> uint8 HWC frames
Two variants: `full` calls the model's forward at every step (what `net(...)` gives a user), `cached` computes the
context stream once per decision and runs only the target stream per step (the SDK's context cache, in torch).

Also: `--flops` counts the matmul/conv FLOPs of one decision with torch.profiler (a cross-check of the analytic
count in bench/flops.ts), `--matmul` measures torch's dense fp32 matmul GFLOP/s at the same thread count.
Prints one JSON object on stdout.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from v4s_train.model import Decoder, Denoiser, Encoder, ScaledDecoder, ScaledEncoder  # noqa: E402


def onnx_initializers(path):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    return m, inits


def denoiser_like(path, manifest):
    """A Denoiser of model.py with the package's sizes (depth, width, heads, vocabularies), read from its ONNX."""
    _, inits = onnx_initializers(path)
    depth = len({k.split(".")[1] for k in inits if k.startswith("blocks.") and k.endswith(".ln1.weight")})
    d = inits["ln_out.weight"].shape[0]
    heads = manifest["tensors"]["context"]["outputs"]["context_k"]["shape"][2]
    lat = manifest["latent"]
    return Denoiser(zc=lat["channels"], zh=lat["height"], d=d, depth=depth, heads=heads,
                    n_actions=inits["act_emb.weight"].shape[0] - 1, n_goals=inits["goal_emb.weight"].shape[0] - 2)


def denoiser_state_from_onnx(path, net):
    """Map denoiser.onnx's initializers onto the module's parameters. torch.onnx names most by parameter;
    a Linear on 3-D input becomes MatMul(x, W^T) + Add(bias) with an anonymous W^T, found through its bias."""
    m, inits = onnx_initializers(path)
    state = {}
    consumers = {}
    for n in m.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    expected = net.state_dict()
    for name, arr in inits.items():
        if name in expected:
            state[name] = torch.from_numpy(arr.copy())
    for n in m.graph.node:
        if n.op_type != "MatMul" or n.input[1] not in inits or n.input[1] in expected:
            continue
        for c in consumers.get(n.output[0], []):
            if c.op_type != "Add":
                continue
            bias = next((i for i in c.input if i.endswith(".bias") and i in expected), None)
            if bias is not None:
                state[bias[: -len(".bias")] + ".weight"] = torch.from_numpy(inits[n.input[1]].T.copy())
    if "null_ctx" not in state:
        cand = [a for k, a in inits.items() if k.startswith("onnx::") and a.shape == (1,) + tuple(expected["null_ctx"].shape)]
        if len(cand) == 1:
            state["null_ctx"] = torch.from_numpy(cand[0].reshape(expected["null_ctx"].shape).copy())
    missing = [k for k in expected if k not in state]
    if missing:
        raise RuntimeError(f"{path}: could not map parameters {missing}")
    net.load_state_dict(state)


def codec_from_onnx(model_dir):
    _, e = onnx_initializers(os.path.join(model_dir, "encoder.onnx"))
    _, d = onnx_initializers(os.path.join(model_dir, "decoder.onnx"))
    enc, dec = Encoder(), Decoder()
    enc.load_state_dict({k[len("enc."):]: torch.from_numpy(v.copy()) for k, v in e.items() if k.startswith("enc.")})
    dec.load_state_dict({k[len("dec."):]: torch.from_numpy(v.copy()) for k, v in d.items() if k.startswith("dec.")})
    senc = ScaledEncoder(enc, float(e["scale"]), float(e["shift"])).eval()
    sdec = ScaledDecoder(dec, float(d["scale"]), float(d["shift"])).eval()
    return senc, sdec


def parity_error(model_dir, net, senc):
    path = os.path.join(model_dir, "parity.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        p = json.load(f)
    ins = p["denoiser"]["inputs"]
    names = ["x_t", "t", "context", "context_positions", "target_positions", "actions", "goal", "context_mask",
             "instruction_mask"]
    args = []
    for n in names:
        dt = torch.int64 if n in ("actions", "goal") else torch.float32
        args.append(torch.tensor(ins[n]["data"], dtype=dt).reshape(ins[n]["shape"]))
    with torch.inference_mode():
        pred, _, _ = net(*args)
        lat = senc(torch.tensor(p["encoder"]["inputs"]["frames"]["data"]).reshape(p["encoder"]["inputs"]["frames"]["shape"]))
    ref = torch.tensor(p["denoiser"]["outputs"]["pred"]["data"]).reshape(pred.shape)
    lref = torch.tensor(p["encoder"]["outputs"]["latents"]["data"]).reshape(lat.shape)
    return max(float((pred - ref).abs().max()), float((lat - lref).abs().max()))


class Decision:
    """One planning decision in torch, laid out as the SDK lays it out."""

    def __init__(self, net, senc, sdec, manifest, K, n, steps, seed=1):
        self.net, self.senc, self.sdec = net, senc, sdec
        H = manifest["horizon"]
        g = manifest["defaults"]["guidance"]
        omega = g["scale"] if g["kind"] == "joint" else 1.0
        self.weights = [1.0] if omega == 1.0 else [1.0 - omega, omega]
        self.branches = [(1.0, 1.0)] if omega == 1.0 else [(0.0, 0.0), (1.0, 1.0)]  # (context, instruction)
        nb = len(self.branches)
        self.n, self.H, self.K, self.steps, self.nb = n, H, K, steps, nb
        W = manifest["resolution"]["width"]
        Hp = manifest["resolution"]["height"]
        # the same inputs as bench/imagine-suite.ts: frames with a fixed pattern, non-contiguous positions
        idx = np.arange(W * Hp * 3)
        self.frames = [((idx * 7 + k * 41) % 256).astype(np.uint8).reshape(Hp, W, 3) for k in range(K)]
        # offsets relative to the newest context frame, as the SDK feeds them (bench/imagine-suite.ts CONTEXT_OFFSETS)
        self.positions = torch.tensor([[-24.0, -16.0, -12.0, -7.0, -3.0, 0.0][6 - K:]])
        names = sorted(manifest["instruction"]["actions"].items(), key=lambda kv: kv[1]["id"])
        ids = [v["id"] for _, v in names]
        self.actions = torch.tensor([[ids[(c + j * (c + 1)) % len(ids)] for j in range(H)] for c in range(n)], dtype=torch.int64)
        self.goal = torch.ones(n, dtype=torch.int64)
        self.sigmas = [1.0 - k / steps for k in range(steps)] + [0.0]
        self.gen = torch.Generator().manual_seed(seed)
        zc, zh, zw = manifest["latent"]["channels"], manifest["latent"]["height"], manifest["latent"]["width"]
        self.lat = (zc, zh, zw)

    def run(self, cached):
        n, nb, K, H = self.n, self.nb, self.K, self.H
        B = n * nb
        t0 = time.perf_counter()
        # encode: frames -> [-1, 1] CHW -> latents; conditioning rows
        fr = torch.from_numpy(np.stack(self.frames)).permute(0, 3, 1, 2).float().mul_(2.0 / 255.0).sub_(1.0)
        lat = self.senc(fr)  # [K, C, h, w]
        cm = torch.tensor([self.branches[b][0] for b in range(nb) for _ in range(n)])
        im = torch.tensor([self.branches[b][1] for b in range(nb) for _ in range(n)])
        ctx = lat.unsqueeze(0).expand(B, K, *self.lat)
        cpos = self.positions.expand(B, K)
        tpos = torch.arange(1, H + 1, dtype=torch.float32).unsqueeze(0).expand(B, H)
        act = self.actions.repeat(nb, 1)
        goal = self.goal.repeat(nb)
        if cached:
            # context stream once, on one row per distinct context mask, then expanded over the batch
            masks = sorted(set(b[0] for b in self.branches))
            crow = self.net.context_stream(lat.unsqueeze(0).expand(len(masks), K, *self.lat), self.positions.expand(len(masks), K),
                                           torch.tensor(masks))
            sel = torch.tensor([masks.index(self.branches[b][0]) for b in range(nb) for _ in range(n)])
            kvs = [(k.index_select(0, sel), v.index_select(0, sel)) for k, v in crow]
            base = ctx[:, -1] * cm.view(-1, 1, 1, 1)
        t1 = time.perf_counter()
        # denoise
        x = torch.randn(n, H, *self.lat, generator=self.gen)
        for k in range(self.steps):
            s, s1 = self.sigmas[k], self.sigmas[k + 1]
            xt = x.repeat(nb, 1, 1, 1, 1)
            t = torch.full((B,), s)
            if cached:
                pred, gr = self.net.target_stream(kvs, xt, t, tpos, act, goal, im, base)
            else:
                pred, gr, gcur = self.net(xt, t, ctx, cpos, tpos, act, goal, cm, im)
            guided = pred[:n] if nb == 1 else self.weights[0] * pred[:n] + self.weights[1] * pred[n:]
            dt = s1 - s
            x = (1.0 + dt / s) * x - (dt / s) * guided
        if cached:
            gcur = self.net.current_grounding(ctx[:, -1], goal, im)
        t2 = time.perf_counter()
        # decode: latents -> frames -> uint8 HWC
        frames = self.sdec(x.reshape(n * H, *self.lat))
        u8 = frames.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        t3 = time.perf_counter()
        return {"encodeMs": (t1 - t0) * 1e3, "denoiseMs": (t2 - t1) * 1e3, "decodeMs": (t3 - t2) * 1e3,
                "totalMs": (t3 - t0) * 1e3, "checksum": float(x.abs().mean()), "frames": int(u8.shape[0])}


def median_row(runs):
    return {k: statistics.median(r[k] for r in runs) for k in ("encodeMs", "denoiseMs", "decodeMs", "totalMs")}


def count_flops(dec):
    from torch.profiler import ProfilerActivity, profile

    out = {}
    for cached in (False, True):
        with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
            dec.run(cached)
        out["cached" if cached else "full"] = int(sum(e.flops for e in prof.key_averages() if e.flops))
    return out


def matmul_peak(threads, sizes=(256, 512, 1024, 2048), seconds=1.0):
    rows = []
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = torch.empty(n, n)
        for _ in range(3):
            torch.mm(a, b, out=c)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            torch.mm(a, b, out=c)
            reps += 1
        dt = time.perf_counter() - t0
        rows.append({"n": n, "gflops": 2.0 * n ** 3 * reps / dt / 1e9})
    return rows


def serve(net, senc, sdec, manifest, args):
    cache = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op", "decision")
        with torch.inference_mode():
            if op == "decision":
                key = (req["candidates"], req["steps"], req.get("context", args.context))
                if key not in cache:
                    cache[key] = Decision(net, senc, sdec, manifest, key[2], key[0], key[1])
                dec = cache[key]
                cached = req.get("variant", "full") == "cached"
                if req.get("warmup", False):
                    dec.run(cached)
                runs = [dec.run(cached) for _ in range(int(req.get("repeats", 1)))]
                out = {"candidates": key[0], "steps": key[1], "context": key[2], "variant": req.get("variant", "full"),
                       "batch": key[0] * dec.nb, "samples": [{k: r[k] for k in ("encodeMs", "denoiseMs", "decodeMs", "totalMs")} for r in runs]}
            elif op == "flops":
                out = {"flops": count_flops(Decision(net, senc, sdec, manifest, args.context, 8, 8))}
            elif op == "matmul":
                out = {"matmul": matmul_peak(args.threads)}
            else:
                out = {"error": f"unknown op {op}"}
        print(json.dumps(out), flush=True)


def main():
    p = argparse.ArgumentParser(prog="bench_torch.py")
    p.add_argument("--model", default="models/v4s-builtin-small")
    p.add_argument("--candidates", default="1,4,8,16")
    p.add_argument("--steps", default="4,8,16")
    p.add_argument("--context", type=int, default=4, help="context frames (1..6)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", default="full,cached")
    p.add_argument("--flops", action="store_true", help="count one decision's FLOPs (8 candidates, 8 steps)")
    p.add_argument("--matmul", action="store_true", help="measure dense fp32 matmul GFLOP/s")
    p.add_argument("--serve", action="store_true",
                   help="read JSON requests from stdin, one a line, answer one JSON line each (for interleaved runs): "
                        '{"op": "decision", "candidates": 8, "steps": 8, "variant": "full", "repeats": 1, "warmup": true}, '
                        '{"op": "flops"}, {"op": "matmul"}')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    with open(os.path.join(args.model, "manifest.json")) as f:
        manifest = json.load(f)
    net = denoiser_like(os.path.join(args.model, "denoiser.onnx"), manifest).eval()
    denoiser_state_from_onnx(os.path.join(args.model, "denoiser.onnx"), net)
    senc, sdec = codec_from_onnx(args.model)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "interopThreads": torch.get_num_interop_threads(),
              "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY"), "model": manifest["name"], "context": args.context,
              "weights": "the package's ONNX initializers", "parityMaxAbsError": parity_error(args.model, net, senc),
              "rows": []}
    if args.serve:
        print(json.dumps(result), flush=True)
        serve(net, senc, sdec, manifest, args)
        return
    variants = [v for v in args.variants.split(",") if v]
    with torch.inference_mode():
        for n in [int(c) for c in args.candidates.split(",") if c]:
            for steps in [int(s) for s in args.steps.split(",") if s]:
                for variant in variants:
                    dec = Decision(net, senc, sdec, manifest, args.context, n, steps)
                    dec.run(variant == "cached")  # warm-up, not timed
                    runs = [dec.run(variant == "cached") for _ in range(args.repeats)]
                    row = {"candidates": n, "steps": steps, "variant": variant, "batch": n * dec.nb, **median_row(runs)}
                    result["rows"].append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
        if args.flops:
            result["flops"] = count_flops(Decision(net, senc, sdec, manifest, args.context, 8, 8))
    if args.matmul:
        result["matmul"] = matmul_peak(args.threads)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
