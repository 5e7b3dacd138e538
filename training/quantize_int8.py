"""Dynamic int8 quantisation of a v4s model package's transformer networks, without onnxruntime's Python
tooling (not installable here): every MatMul whose right operand is a constant weight becomes the
com.microsoft DynamicQuantizeMatMul contrib op that onnxruntime's CPU provider runs (activations quantised to
uint8 per call, weights int8 symmetric per output column). What `onnxruntime.quantization.quantize_dynamic`
writes, minus its fusions.

  /usr/bin/python3 training/quantize_int8.py --model models/v4s-builtin-small --out /tmp/v4s-int8

Copies the package to --out and rewrites denoiser.onnx, context.onnx and denoiser_step.onnx there (the conv
autoencoder stays fp32). bench/levers.ts compares the result's speed and output with the fp32 package.
"""
import argparse
import os
import shutil

import numpy as np
import onnx
from onnx import helper, numpy_helper

NETWORKS = ["denoiser.onnx", "context.onnx", "denoiser_step.onnx"]


def quantize(path):
    m = onnx.load(path)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    new_nodes, added, replaced = [], [], 0
    for n in g.node:
        if n.op_type == "MatMul" and n.input[1] in inits and len(numpy_helper.to_array(inits[n.input[1]]).shape) == 2:
            w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
            scale = np.maximum(np.abs(w).max(axis=0), 1e-8) / 127.0
            q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            base = f"{n.input[1]}_q{replaced}"
            added += [numpy_helper.from_array(q, base + "_int8"), numpy_helper.from_array(scale.astype(np.float32), base + "_scale"),
                      numpy_helper.from_array(np.zeros_like(q[0]), base + "_zp")]
            new_nodes.append(helper.make_node("DynamicQuantizeMatMul", [n.input[0], base + "_int8", base + "_scale", base + "_zp"],
                                              list(n.output), name=(n.name or base) + "_dq", domain="com.microsoft"))
            replaced += 1
        else:
            new_nodes.append(n)
    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(added)
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    if not any(o.domain == "com.microsoft" for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(m, path)
    return replaced


def main():
    p = argparse.ArgumentParser(prog="quantize_int8.py")
    p.add_argument("--model", default="models/v4s-builtin-small")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if os.path.abspath(args.out) == os.path.abspath(args.model):
        raise SystemExit("--out must differ from --model")
    shutil.copytree(args.model, args.out, dirs_exist_ok=True)
    for name in NETWORKS:
        path = os.path.join(args.out, name)
        if os.path.exists(path):
            print(f"{name}: {quantize(path)} MatMuls -> DynamicQuantizeMatMul")


if __name__ == "__main__":
    main()
