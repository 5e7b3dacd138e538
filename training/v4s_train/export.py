"""Export the trained autoencoder and denoiser as a v4s.model.v1 package (docs/model-package.md).

  /usr/bin/python3 -m v4s_train.export --ckpt ckpt --out ../models/v4s-builtin-small

Writes encoder.onnx, decoder.onnx, denoiser.onnx, context.onnx + denoiser_step.onnx (the cached-context
split), manifest.json and parity.json (a recorded input with PyTorch's outputs, for the parity test).
"""
import argparse
import json
import os
import subprocess
import time

import numpy as np
import torch
import torch.nn as nn

from .model import ScaledDecoder, ScaledEncoder
from .train import HORIZON, MAX_CONTEXT, MAX_OFFSET, load_ae, make_denoiser

CATEGORIES = ["chair", "sofa", "plant", "bed", "toilet", "tv"]
OPSET = 17
DEN_INPUTS = ["x_t", "t", "context", "context_positions", "target_positions", "actions", "goal", "context_mask",
              "instruction_mask"]


class ContextPart(nn.Module):
    """context.onnx: the context stream's per-layer keys and values, computed once per decision."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, context, context_positions, context_mask):
        kvs = self.net.context_stream(context, context_positions, context_mask)
        k = torch.stack([kv[0] for kv in kvs], dim=0)  # [L, B, heads, K*tok, hd]
        v = torch.stack([kv[1] for kv in kvs], dim=0)
        base = context[:, -1] * context_mask.view(-1, 1, 1, 1)
        return k, v, base


class StepPart(nn.Module):
    """denoiser_step.onnx: one denoising evaluation given cached context keys/values."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x_t, t, context_k, context_v, context_base, target_positions, actions, goal,
                instruction_mask):
        kvs = [(context_k[i], context_v[i]) for i in range(context_k.shape[0])]
        return self.net.target_stream(kvs, x_t, t, target_positions, actions, goal, instruction_mask,
                                      context_base)


def git_commit():
    try:
        return subprocess.check_output(["git", "rev-parse", "HEAD"], text=True).strip()
    except Exception:  # noqa: BLE001 - provenance is best effort
        return "unknown"


def example_inputs(b=2, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "x_t": torch.randn(b, HORIZON, 8, 8, 8, generator=g),
        "t": torch.tensor([0.7, 0.2][:b] + [0.5] * max(0, b - 2)),
        "context": torch.randn(b, k, 8, 8, 8, generator=g),
        "context_positions": torch.tensor([[-9.0, -2.0, 0.0]] * b)[:, -k:],
        "target_positions": torch.arange(1, HORIZON + 1, dtype=torch.float32).repeat(b, 1),
        "actions": torch.tensor([[1, 2, 3, 1]] * b, dtype=torch.int64),
        "goal": torch.tensor([2, 0][:b] + [1] * max(0, b - 2), dtype=torch.int64),
        "context_mask": torch.tensor([1.0, 0.0][:b] + [1.0] * max(0, b - 2)),
        "instruction_mask": torch.tensor([1.0, 1.0][:b] + [0.0] * max(0, b - 2)),
    }


def export(args):
    os.makedirs(args.out, exist_ok=True)
    enc, dec, shift, scale, ae_state = load_ae(args.ckpt)
    s = torch.load(os.path.join(args.ckpt, "dit.pt"))
    net = make_denoiser()
    net.load_state_dict(s["ema"])
    net.eval()
    senc, sdec = ScaledEncoder(enc, scale, shift).eval(), ScaledDecoder(dec, scale, shift).eval()
    with torch.no_grad():
        torch.onnx.export(senc, (torch.zeros(2, 3, 64, 64),), os.path.join(args.out, "encoder.onnx"),
                          input_names=["frames"], output_names=["latents"], opset_version=OPSET,
                          dynamic_axes={"frames": {0: "N"}, "latents": {0: "N"}})
        torch.onnx.export(sdec, (torch.zeros(2, 8, 8, 8),), os.path.join(args.out, "decoder.onnx"),
                          input_names=["latents"], output_names=["frames"], opset_version=OPSET,
                          dynamic_axes={"latents": {0: "N"}, "frames": {0: "N"}})
        ex = example_inputs()
        dyn = {"x_t": {0: "B"}, "t": {0: "B"}, "context": {0: "B", 1: "K"}, "context_positions": {0: "B", 1: "K"},
               "target_positions": {0: "B"}, "actions": {0: "B"}, "goal": {0: "B"}, "context_mask": {0: "B"},
               "instruction_mask": {0: "B"}, "pred": {0: "B"}, "grounding": {0: "B"}}
        torch.onnx.export(net, tuple(ex[n] for n in DEN_INPUTS), os.path.join(args.out, "denoiser.onnx"),
                          input_names=DEN_INPUTS, output_names=["pred", "grounding", "grounding_current"], opset_version=OPSET,
                          dynamic_axes={**dyn, "grounding_current": {0: "B"}})
        cp = ContextPart(net).eval()
        torch.onnx.export(cp, (ex["context"], ex["context_positions"], ex["context_mask"]),
                          os.path.join(args.out, "context.onnx"),
                          input_names=["context", "context_positions", "context_mask"],
                          output_names=["context_k", "context_v", "context_base"], opset_version=OPSET,
                          dynamic_axes={"context": {0: "B", 1: "K"}, "context_positions": {0: "B", 1: "K"},
                                        "context_mask": {0: "B"}, "context_k": {1: "B", 3: "KT"},
                                        "context_v": {1: "B", 3: "KT"}, "context_base": {0: "B"}})
        k, v, base = cp(ex["context"], ex["context_positions"], ex["context_mask"])
        sp = StepPart(net).eval()
        step_in = ["x_t", "t", "context_k", "context_v", "context_base", "target_positions", "actions", "goal",
                   "instruction_mask"]
        torch.onnx.export(sp, (ex["x_t"], ex["t"], k, v, base, ex["target_positions"], ex["actions"], ex["goal"],
                               ex["instruction_mask"]), os.path.join(args.out, "denoiser_step.onnx"),
                          input_names=step_in, output_names=["pred", "grounding"], opset_version=OPSET,
                          dynamic_axes={"x_t": {0: "B"}, "t": {0: "B"}, "context_k": {1: "B", 3: "KT"},
                                        "context_v": {1: "B", 3: "KT"}, "context_base": {0: "B"},
                                        "target_positions": {0: "B"}, "actions": {0: "B"}, "goal": {0: "B"},
                                        "instruction_mask": {0: "B"}, "pred": {0: "B"}, "grounding": {0: "B"}})
        pred, gr, gcur = net(*(ex[n] for n in DEN_INPUTS))
        frames = torch.linspace(-1, 1, 2 * 3 * 64 * 64).reshape(2, 3, 64, 64).sin()
        lat = senc(frames)
        rec = sdec(lat)
    L, hd = len(net.blocks), net.d // net.heads
    parity = {
        "note": "PyTorch outputs for recorded inputs; test/model-parity.test.ts checks onnxruntime-node within 1e-4",
        "denoiser": {"inputs": {n: {"shape": list(ex[n].shape), "data": ex[n].flatten().tolist()} for n in DEN_INPUTS},
                     "outputs": {"pred": {"shape": list(pred.shape), "data": pred.flatten().tolist()},
                                 "grounding": {"shape": list(gr.shape), "data": gr.flatten().tolist()},
                                 "grounding_current": {"shape": list(gcur.shape), "data": gcur.flatten().tolist()}}},
        "encoder": {"inputs": {"frames": {"shape": list(frames.shape), "data": frames.flatten().tolist()}},
                    "outputs": {"latents": {"shape": list(lat.shape), "data": lat.flatten().tolist()}}},
        "decoder": {"inputs": {"latents": {"shape": list(lat.shape), "data": lat.flatten().tolist()}},
                    "outputs": {"frames": {"shape": list(rec.shape), "data": rec.flatten().tolist()}}},
    }
    with open(os.path.join(args.out, "parity.json"), "w") as f:
        json.dump(parity, f)
    lat5 = ["B", "H", 8, 8, 8]
    meta = {}
    if os.path.exists(os.path.join(args.ckpt, "meta.json")):
        with open(os.path.join(args.ckpt, "meta.json")) as f:
            meta = json.load(f)
    manifest = {
        "format": "v4s.model.v1",
        "name": args.name or os.path.basename(os.path.normpath(args.out)),
        "description": "Context-guided latent video diffusion (Video4Spatial design, scaled down) trained on the "
                       "built-in simulator: joint CFG, 3-D RoPE over non-contiguous context, block-causal "
                       "attention, auxiliary grounding (a goal-conditioned grounder on the current and imagined latents).",
        "resolution": {"width": 64, "height": 64, "channels": 3},
        "camera": {"hfov": 90},
        "pixelRange": [-1, 1],
        "latent": {"channels": 8, "height": 8, "width": 8, "scale": scale},
        "prediction": "x0",
        "schedule": {"kind": "flow"},
        "instruction": {
            "actions": {"move_forward": {"id": 1, "kind": "move", "amount": 0.25},
                        "turn_left": {"id": 2, "kind": "turn", "amount": 30},
                        "turn_right": {"id": 3, "kind": "turn", "amount": 30}},
            "goalCategories": CATEGORIES,
            "text": False,
        },
        "context": {"maxFrames": MAX_CONTEXT, "minFrames": 1},
        "horizon": HORIZON,
        "positions": {"relative": True, "scale": 1.0, "range": [-MAX_OFFSET, HORIZON]},
        "auxOutputs": [{"name": "grounding", "kind": "mask", "width": 8, "height": 8},
                       {"name": "grounding_current", "kind": "mask", "width": 8, "height": 8, "frame": "newest-context"}],
        "defaults": {"sampler": {"kind": "euler", "steps": args.steps, "shift": 1.0},
                     "guidance": {"kind": "joint", "scale": args.cfg}},
        "files": {"denoiser": "denoiser.onnx", "encoder": "encoder.onnx", "decoder": "decoder.onnx",
                  "context": "context.onnx", "denoiserStep": "denoiser_step.onnx"},
        "tensors": {
            "denoiser": {
                "inputs": {"x_t": {"shape": lat5, "dtype": "float32"}, "t": {"shape": ["B"], "dtype": "float32"},
                           "context": {"shape": ["B", "K", 8, 8, 8], "dtype": "float32"},
                           "context_positions": {"shape": ["B", "K"], "dtype": "float32"},
                           "target_positions": {"shape": ["B", "H"], "dtype": "float32"},
                           "actions": {"shape": ["B", "H"], "dtype": "int64"},
                           "goal": {"shape": ["B"], "dtype": "int64"},
                           "context_mask": {"shape": ["B"], "dtype": "float32"},
                           "instruction_mask": {"shape": ["B"], "dtype": "float32"}},
                "outputs": {"pred": {"shape": lat5, "dtype": "float32"},
                            "grounding": {"shape": ["B", "H", 8, 8], "dtype": "float32"},
                            "grounding_current": {"shape": ["B", 8, 8], "dtype": "float32"}},
            },
            "encoder": {"inputs": {"frames": {"shape": ["N", 3, 64, 64], "dtype": "float32"}},
                        "outputs": {"latents": {"shape": ["N", 8, 8, 8], "dtype": "float32"}}},
            "decoder": {"inputs": {"latents": {"shape": ["N", 8, 8, 8], "dtype": "float32"}},
                        "outputs": {"frames": {"shape": ["N", 3, 64, 64], "dtype": "float32"}}},
            "context": {"inputs": {"context": {"shape": ["B", "K", 8, 8, 8], "dtype": "float32"},
                                   "context_positions": {"shape": ["B", "K"], "dtype": "float32"},
                                   "context_mask": {"shape": ["B"], "dtype": "float32"}},
                        "outputs": {"context_k": {"shape": [L, "B", net.heads, "KT", hd], "dtype": "float32"},
                                    "context_v": {"shape": [L, "B", net.heads, "KT", hd], "dtype": "float32"},
                                    "context_base": {"shape": ["B", 8, 8, 8], "dtype": "float32"}}},
            "denoiserStep": {"inputs": {"x_t": {"shape": lat5, "dtype": "float32"},
                                        "t": {"shape": ["B"], "dtype": "float32"},
                                        "context_k": {"shape": [L, "B", net.heads, "KT", hd], "dtype": "float32"},
                                        "context_v": {"shape": [L, "B", net.heads, "KT", hd], "dtype": "float32"},
                                        "context_base": {"shape": ["B", 8, 8, 8], "dtype": "float32"},
                                        "target_positions": {"shape": ["B", "H"], "dtype": "float32"},
                                        "actions": {"shape": ["B", "H"], "dtype": "int64"},
                                        "goal": {"shape": ["B"], "dtype": "int64"},
                                        "instruction_mask": {"shape": ["B"], "dtype": "float32"}},
                             "outputs": {"pred": {"shape": lat5, "dtype": "float32"},
                                         "grounding": {"shape": ["B", "H", 8, 8], "dtype": "float32"}}},
        },
        "provenance": {
            "dataSeeds": meta.get("dataSeeds", "train split, scene seeds 0..1199 (src/sim-adapters/builtin/seeds.ts)"),
            "trainingSteps": int(s["step"]),
            "autoencoderSteps": int(ae_state["step"]),
            "trainingWallClockMinutes": round(s["seconds"] / 60.0, 1),
            "trainedOn": meta.get("trainedOn", "2-core CPU (Debian python3-torch 1.13)"),
            "commit": git_commit(),
            "exportedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "parameters": int(sum(p.numel() for p in net.parameters())),
            "grounderSteps": int(s.get("grounder", {}).get("step", 0)),
        },
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"wrote {args.out}: {total / 1e6:.2f} MB")


def main():
    p = argparse.ArgumentParser(prog="v4s_train.export")
    p.add_argument("--ckpt", default="ckpt")
    p.add_argument("--out", required=True)
    p.add_argument("--name", default=None, help="model name in the manifest (default: the --out folder's name)")
    p.add_argument("--cfg", type=float, default=1.5, help="default joint-CFG scale written to the manifest")
    p.add_argument("--steps", type=int, default=2, help="default number of Euler steps written to the manifest")
    export(p.parse_args())


if __name__ == "__main__":
    main()
