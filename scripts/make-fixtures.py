#!/usr/bin/python3
"""Write the tiny ONNX model packages used by the world-model tests and bench.

Run with Debian's python3 (onnx 1.12, numpy):  /usr/bin/python3 scripts/make-fixtures.py
Output: test/fixtures/models/<name>/{manifest.json, denoiser.onnx[, encoder.onnx, decoder.onnx]}.
The generated files are committed so that `npm test` never needs Python; rerun this script only when a
fixture changes, and commit its output.

Every fixture has closed-form behaviour, so a test can compute by hand what the sampler must produce:

- linear    pixel space 4x4x3, H symbolic (horizon 3), K 1..4:
            pred = A*x_t + B*context_mask*mean_k(context) + instruction_mask*(C*action_id + G*goal_id) + D*t
            (coefficients in manifest.provenance.fixture)
- echo      pixel space 2x2x3, H = 4, K 1..6: pred, flattened per sample (48 values), is
            [t, context_mask, instruction_mask, goal, target_positions(4), actions(4),
             context_positions(K), context[:, k, 0, 0, 0] (K), 0, 0, ...] -- what reached the model.
- grounded  pixel space 4x4x3, H = 2, K 1..3, grounding 2x2:
            pred (x0) = context_mask*newest_context + instruction_mask*0.1*action_id
            grounding = instruction_mask*0.25*goal_id + P[h, gy, gx] with P = 0.1*(2*gy+gx) + 0.05*h,
            and NaN when goal_id == 3 ("void"), to test output checks.
- nan       pixel space 2x2x3, H = 1: pred = x_t + 0*sqrt(-context_mask) -> NaN in every branch with context.
- bad-dtype like nan's interface, but its `actions` input is float32 while the manifest (correctly, per the
            interface) says int64: loading must fail with E_MODEL_TENSOR naming `actions`.
- cached    the cached-context split (context.onnx + denoiser_step.onnx, as the shipped model exports it) of
            pred = A*x_t + B*cm*mean_k(context) + E*cm*newest + im*(C*action + G*goal) + D*t + P*cm*mean_k(pos),
            with grounding = im*0.25*goal + P[h,gy,gx] and grounding_current = im*0.5*goal + Q[gy,gx];
            denoiser.onnx computes the same in one graph, so tests can compare both paths.
            context.onnx -> context_k [2,B,3,4,4] (cm*mean, 2*cm*mean), context_v [2,B,K] (cm*pos, 3*cm*pos),
            context_base [B,3,4,4] (cm*newest).
- latent    8x8x3 frames, latents 3x4x4, scale 2: encoder = 2*avgpool2x2, decoder = nearest-upsample(latents/2),
            pred (x0) = context_mask*newest_context_latent + instruction_mask*0.1*action_id.
- bench     32x32x3 frames, latents 8x8x8 (128 tokens of 16), a 4-layer weightless transformer-like
            denoiser (weights are sin() of a range, constant-folded by onnxruntime) sized like the shipped
            small model, so that bench/imagine.ts measures runtime overhead against a realistic session.run.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'models')
OPSET = 17
IR_VERSION = 8  # onnx 1.12's default; onnxruntime-node 1.30 reads it

ACTIONS = {
    'move_forward': {'id': 1, 'kind': 'move', 'amount': 0.25},
    'turn_left': {'id': 2, 'kind': 'turn', 'amount': 30},
    'turn_right': {'id': 3, 'kind': 'turn', 'amount': 30},
}


class G:
    """A tiny graph builder: unique names, constants as initializers."""

    def __init__(self):
        self.nodes = []
        self.inits = []
        self.n = 0

    def name(self, p):
        self.n += 1
        return f'{p}_{self.n}'

    def const(self, value, dtype=np.float32):
        arr = np.array(value, dtype=dtype)
        nm = self.name('c')
        self.inits.append(numpy_helper.from_array(arr, nm))
        return nm

    def op(self, op_type, inputs, out=None, **attrs):
        out = out or self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def model(self, inputs, outputs, name):
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='v4s-nav make-fixtures')
        m.ir_version = IR_VERSION
        onnx.checker.check_model(m)
        return m


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


F, I64 = TensorProto.FLOAT, TensorProto.INT64


def denoiser_inputs(H, C, h, w, with_goal=True):
    ins = [
        vi('x_t', F, ['B', H, C, h, w]),
        vi('t', F, ['B']),
        vi('context', F, ['B', 'K', C, h, w]),
        vi('context_positions', F, ['B', 'K']),
        vi('target_positions', F, ['B', H]),
        vi('actions', I64, ['B', H]),
    ]
    if with_goal:
        ins.append(vi('goal', I64, ['B']))
    ins += [vi('context_mask', F, ['B']), vi('instruction_mask', F, ['B'])]
    return ins


def tensor_specs(values):
    dt = {F: 'float32', I64: 'int64'}
    out = {}
    for v in values:
        tt = v.type.tensor_type
        dims = [d.dim_param if d.dim_param else d.dim_value for d in tt.shape.dim]
        out[v.name] = {'shape': dims, 'dtype': dt[tt.elem_type]}
    return out


def as_b5(g, x):
    """[B] -> [B,1,1,1,1]"""
    return g.op('Reshape', [x, g.const([-1, 1, 1, 1, 1], np.int64)])


def used_positions(g, pred):
    """Touch the position inputs (times 0) so every fixture consumes every declared input."""
    s = g.op('Add', [g.op('ReduceSum', ['context_positions'], keepdims=0),
                     g.op('ReduceSum', ['target_positions'], keepdims=0)])
    return g.op('Add', [pred, g.op('Mul', [s, g.const(0.0)])])


def manifest(name, res, latent, prediction, schedule, horizon, ctx, tensors, files, aux=(), goals=(),
             defaults=None, extra_prov=None, rng=(-64, 8), description=''):
    prov = {'dataSeeds': 'none (generated fixture)', 'trainingSteps': 0, 'commit': '',
            'trainedOn': 'scripts/make-fixtures.py'}
    if extra_prov:
        prov.update(extra_prov)
    return {
        'format': 'v4s.model.v1',
        'name': name,
        'description': description,
        'resolution': {'width': res[1], 'height': res[0], 'channels': 3},
        'camera': {'hfov': 90},
        'pixelRange': [-1, 1],
        'latent': {'channels': latent[0], 'height': latent[1], 'width': latent[2], 'scale': latent[3]},
        'prediction': prediction,
        'schedule': schedule,
        'instruction': {'actions': ACTIONS, 'goalCategories': list(goals), 'text': False},
        'context': {'maxFrames': ctx[1], 'minFrames': ctx[0]},
        'horizon': horizon,
        'positions': {'relative': True, 'scale': 1.0, 'range': list(rng)},
        'auxOutputs': list(aux),
        'defaults': defaults or {'sampler': {'kind': 'euler', 'steps': 3, 'shift': 2.0},
                                 'guidance': {'kind': 'joint', 'scale': 1.5}},
        'files': files,
        'tensors': tensors,
        'provenance': prov,
    }


def save(name, models, man):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    for fname, m in models.items():
        onnx.save(m, os.path.join(d, fname))
    with open(os.path.join(d, 'manifest.json'), 'w') as f:
        json.dump(man, f, indent=2)
        f.write('\n')


# ---------------------------------------------------------------------------------------------------------
def make_linear():
    A, B, C, Gc, D = 0.5, 0.3, 0.2, 0.05, 0.001
    g = G()
    ctxmean = g.op('ReduceMean', ['context'], axes=[1], keepdims=1)
    cm, im = as_b5(g, 'context_mask'), as_b5(g, 'instruction_mask')
    act = g.op('Reshape', [g.op('Cast', ['actions'], to=F), g.const([0, 0, 1, 1, 1], np.int64)])
    goal = as_b5(g, g.op('Cast', ['goal'], to=F))
    tr = as_b5(g, 't')
    term_x = g.op('Mul', ['x_t', g.const(A)])
    term_c = g.op('Mul', [g.op('Mul', [ctxmean, cm]), g.const(B)])
    instr = g.op('Add', [g.op('Mul', [act, g.const(C)]), g.op('Mul', [goal, g.const(Gc)])])
    term_i = g.op('Mul', [instr, im])
    term_t = g.op('Mul', [tr, g.const(D)])
    s = g.op('Add', [g.op('Add', [term_x, term_c]), g.op('Add', [term_i, term_t])])
    g.op('Identity', [used_positions(g, s)], out='pred')
    ins = denoiser_inputs('H', 3, 4, 4)
    outs = [vi('pred', F, ['B', 'H', 3, 4, 4])]
    m = g.model(ins, outs, 'linear')
    man = manifest('fixture-linear', (4, 4), (3, 4, 4, 1.0), 'x0', {'kind': 'flow'}, 3, (1, 4),
                   {'denoiser': {'inputs': tensor_specs(ins), 'outputs': tensor_specs(outs)}},
                   {'denoiser': 'denoiser.onnx'}, goals=['chair', 'sofa'],
                   extra_prov={'fixture': {'A': A, 'B': B, 'C': C, 'G': Gc, 'D': D}},
                   description='pred = A*x_t + B*cm*mean(context) + im*(C*action + G*goal) + D*t')
    save('linear', {'denoiser.onnx': m}, man)


def make_echo():
    g = G()
    per = 4 * 3 * 2 * 2
    zeros = g.op('Mul', [g.op('Reshape', ['x_t', g.const([-1, per], np.int64)]), g.const(0.0)])
    ax1 = g.const([1], np.int64)
    col = lambda x: g.op('Unsqueeze', [x, ax1])
    cpx = g.op('Slice', ['context', g.const([0, 0, 0], np.int64), g.const([1, 1, 1], np.int64),
                         g.const([2, 3, 4], np.int64)])
    cpx = g.op('Reshape', [cpx, g.const([0, -1], np.int64)])
    parts = [col('t'), col('context_mask'), col('instruction_mask'), col(g.op('Cast', ['goal'], to=F)),
             'target_positions', g.op('Cast', ['actions'], to=F), 'context_positions', cpx, zeros]
    cat = g.op('Concat', parts, axis=1)
    sl = g.op('Slice', [cat, g.const([0], np.int64), g.const([per], np.int64), ax1])
    g.op('Reshape', [sl, g.const([-1, 4, 3, 2, 2], np.int64)], out='pred')
    ins = denoiser_inputs(4, 3, 2, 2)
    outs = [vi('pred', F, ['B', 4, 3, 2, 2])]
    m = g.model(ins, outs, 'echo')
    man = manifest('fixture-echo', (2, 2), (3, 2, 2, 1.0), 'x0', {'kind': 'flow'}, 4, (1, 6),
                   {'denoiser': {'inputs': tensor_specs(ins), 'outputs': tensor_specs(outs)}},
                   {'denoiser': 'denoiser.onnx'}, goals=['chair', 'sofa'], rng=(-100, 4),
                   description='pred echoes [t, cm, im, goal, target_positions, actions, context_positions, '
                               'context[:,k,0,0,0]] per sample')
    save('echo', {'denoiser.onnx': m}, man)


def newest_plus_action(g, C, h, w):
    newest = g.op('Gather', ['context', g.const(-1, np.int64)], axis=1)  # [B,C,h,w]
    newest = g.op('Unsqueeze', [newest, g.const([1], np.int64)])  # [B,1,C,h,w]
    cm, im = as_b5(g, 'context_mask'), as_b5(g, 'instruction_mask')
    act = g.op('Reshape', [g.op('Cast', ['actions'], to=F), g.const([0, 0, 1, 1, 1], np.int64)])
    x0 = g.op('Add', [g.op('Mul', [newest, cm]), g.op('Mul', [g.op('Mul', [act, g.const(0.1)]), im])])
    return g.op('Add', [x0, g.op('Mul', ['x_t', g.const(0.0)])])


def make_grounded():
    g = G()
    x0 = newest_plus_action(g, 3, 4, 4)
    g.op('Identity', [used_positions(g, x0)], out='pred')
    goal = g.op('Reshape', [g.op('Cast', ['goal'], to=F), g.const([-1, 1, 1, 1], np.int64)])
    im = g.op('Reshape', ['instruction_mask', g.const([-1, 1, 1, 1], np.int64)])
    P = np.array([[[0.1 * (2 * gy + gx) + 0.05 * h for gx in range(2)] for gy in range(2)] for h in range(2)],
                 dtype=np.float32)[None]
    nan = g.op('Mul', [g.op('Sqrt', [g.op('Sub', [g.const(2.5), goal])]), g.const(0.0)])
    gr = g.op('Add', [g.op('Mul', [g.op('Mul', [goal, g.const(0.25)]), im]), g.const(P)])
    g.op('Add', [gr, nan], out='grounding')
    ins = denoiser_inputs(2, 3, 4, 4)
    outs = [vi('pred', F, ['B', 2, 3, 4, 4]), vi('grounding', F, ['B', 2, 2, 2])]
    m = g.model(ins, outs, 'grounded')
    man = manifest('fixture-grounded', (4, 4), (3, 4, 4, 1.0), 'x0', {'kind': 'flow'}, 2, (1, 3),
                   {'denoiser': {'inputs': tensor_specs(ins), 'outputs': tensor_specs(outs)}},
                   {'denoiser': 'denoiser.onnx'}, goals=['chair', 'sofa', 'void'],
                   aux=[{'name': 'grounding', 'kind': 'mask', 'width': 2, 'height': 2}],
                   description='x0 = cm*newest + im*0.1*action; grounding = im*0.25*goal + P; NaN for goal 3')
    save('grounded', {'denoiser.onnx': m}, man)


def make_nan():
    g = G()
    bad = g.op('Mul', [g.op('Sqrt', [g.op('Neg', [as_b5(g, 'context_mask')])]), g.const(0.0)])
    s = g.op('Add', ['x_t', bad])
    s = g.op('Add', [s, g.op('Mul', [g.op('ReduceSum', ['context'], keepdims=0), g.const(0.0)])])
    s = g.op('Add', [s, g.op('Mul', [g.op('Cast', [g.op('ReduceSum', ['actions'], keepdims=0)], to=F),
                                     g.const(0.0)])])
    s = g.op('Add', [s, g.op('Mul', [g.op('ReduceSum', ['instruction_mask'], keepdims=0), g.const(0.0)])])
    s = g.op('Add', [s, g.op('Mul', [g.op('ReduceSum', ['t'], keepdims=0), g.const(0.0)])])
    g.op('Identity', [used_positions(g, s)], out='pred')
    ins = denoiser_inputs(1, 3, 2, 2, with_goal=False)
    outs = [vi('pred', F, ['B', 1, 3, 2, 2])]
    m = g.model(ins, outs, 'nan')
    man = manifest('fixture-nan', (2, 2), (3, 2, 2, 1.0), 'x0', {'kind': 'flow'}, 1, (1, 2),
                   {'denoiser': {'inputs': tensor_specs(ins), 'outputs': tensor_specs(outs)}},
                   {'denoiser': 'denoiser.onnx'}, description='pred is NaN in every branch that keeps context')
    save('nan', {'denoiser.onnx': m}, man)


def make_bad_dtype():
    g = G()
    s = g.op('Add', ['x_t', g.op('Mul', [g.op('ReduceSum', ['actions'], keepdims=0), g.const(0.0)])])
    for name in ['context', 'instruction_mask', 'context_mask', 't']:
        s = g.op('Add', [s, g.op('Mul', [g.op('ReduceSum', [name], keepdims=0), g.const(0.0)])])
    g.op('Identity', [used_positions(g, s)], out='pred')
    ins = denoiser_inputs(1, 3, 2, 2, with_goal=False)
    declared = tensor_specs(ins)
    ins = [vi('actions', F, ['B', 1]) if v.name == 'actions' else v for v in ins]
    outs = [vi('pred', F, ['B', 1, 3, 2, 2])]
    m = g.model(ins, outs, 'bad_dtype')
    man = manifest('fixture-bad-dtype', (2, 2), (3, 2, 2, 1.0), 'x0', {'kind': 'flow'}, 1, (1, 2),
                   {'denoiser': {'inputs': declared, 'outputs': tensor_specs(outs)}},
                   {'denoiser': 'denoiser.onnx'}, description='actions input is float32 in the ONNX file')
    save('bad-dtype', {'denoiser.onnx': m}, man)


def make_cached():
    A, Bc, E, C, Gc, D, Pc = 0.5, 0.3, 0.2, 0.2, 0.05, 0.001, 0.01
    Pgrid = np.array([[[0.1 * (2 * gy + gx) + 0.05 * h for gx in range(2)] for gy in range(2)] for h in range(2)],
                     dtype=np.float32)[None]
    Qgrid = np.array([[[0.3, 0.1], [0.2, 0.4]]], dtype=np.float32)
    i64 = lambda v: np.array(v, np.int64)

    # context.onnx
    g = G()
    cm4 = g.op('Reshape', ['context_mask', g.const([-1, 1, 1, 1], np.int64)])
    cm2 = g.op('Reshape', ['context_mask', g.const([-1, 1], np.int64)])
    mean = g.op('ReduceMean', ['context'], axes=[1], keepdims=0)
    k0 = g.op('Mul', [mean, cm4])
    k1 = g.op('Mul', [k0, g.const(2.0)])
    ax0 = g.const([0], np.int64)
    g.op('Concat', [g.op('Unsqueeze', [k0, ax0]), g.op('Unsqueeze', [k1, ax0])], axis=0, out='context_k')
    v0 = g.op('Mul', ['context_positions', cm2])
    v1 = g.op('Mul', [v0, g.const(3.0)])
    g.op('Concat', [g.op('Unsqueeze', [v0, ax0]), g.op('Unsqueeze', [v1, ax0])], axis=0, out='context_v')
    newest = g.op('Gather', ['context', g.const(-1, np.int64)], axis=1)
    g.op('Mul', [newest, cm4], out='context_base')
    ctx_ins = [vi('context', F, ['B', 'K', 3, 4, 4]), vi('context_positions', F, ['B', 'K']), vi('context_mask', F, ['B'])]
    ctx_outs = [vi('context_k', F, [2, 'B', 3, 4, 4]), vi('context_v', F, [2, 'B', 'K']), vi('context_base', F, ['B', 3, 4, 4])]
    ctx_model = g.model(ctx_ins, ctx_outs, 'context')

    def head(g, kk_plus_base, vv, im_in):
        im5 = as_b5(g, im_in)
        act = g.op('Reshape', [g.op('Cast', ['actions'], to=F), g.const([0, 0, 1, 1, 1], np.int64)])
        goal5 = as_b5(g, g.op('Cast', ['goal'], to=F))
        instr = g.op('Mul', [g.op('Add', [g.op('Mul', [act, g.const(C)]), g.op('Mul', [goal5, g.const(Gc)])]), im5])
        s = g.op('Add', [g.op('Mul', ['x_t', g.const(A)]), g.op('Unsqueeze', [kk_plus_base, g.const([1], np.int64)])])
        s = g.op('Add', [s, instr])
        s = g.op('Add', [s, g.op('Mul', [as_b5(g, 't'), g.const(D)])])
        s = g.op('Add', [s, g.op('Reshape', [vv, g.const([-1, 1, 1, 1, 1], np.int64)])])
        s = g.op('Add', [s, g.op('Mul', [g.op('ReduceSum', ['target_positions'], keepdims=0), g.const(0.0)])])
        g.op('Identity', [s], out='pred')
        goal4 = g.op('Reshape', [g.op('Cast', ['goal'], to=F), g.const([-1, 1, 1, 1], np.int64)])
        im4 = g.op('Reshape', [im_in, g.const([-1, 1, 1, 1], np.int64)])
        g.op('Add', [g.op('Mul', [g.op('Mul', [goal4, g.const(0.25)]), im4]), g.const(Pgrid)], out='grounding')

    # denoiser_step.onnx
    g = G()
    k0 = g.op('Gather', ['context_k', g.const(0, np.int64)], axis=0)
    k1 = g.op('Gather', ['context_k', g.const(1, np.int64)], axis=0)
    kk = g.op('Add', [g.op('Mul', [k0, g.const(Bc)]),
                      g.op('Mul', [g.op('Sub', [k1, g.op('Mul', [k0, g.const(2.0)])]), g.const(7.0)])])
    kk = g.op('Add', [kk, g.op('Mul', ['context_base', g.const(E)])])
    vm0 = g.op('ReduceMean', [g.op('Gather', ['context_v', g.const(0, np.int64)], axis=0)], axes=[1], keepdims=1)
    vm1 = g.op('ReduceMean', [g.op('Gather', ['context_v', g.const(1, np.int64)], axis=0)], axes=[1], keepdims=1)
    vv = g.op('Add', [g.op('Mul', [vm0, g.const(Pc)]),
                      g.op('Mul', [g.op('Sub', [vm1, g.op('Mul', [vm0, g.const(3.0)])]), g.const(5.0)])])
    head(g, kk, vv, 'instruction_mask')
    step_ins = [vi('x_t', F, ['B', 2, 3, 4, 4]), vi('t', F, ['B']), vi('context_k', F, [2, 'B', 3, 4, 4]),
                vi('context_v', F, [2, 'B', 'K']), vi('context_base', F, ['B', 3, 4, 4]),
                vi('target_positions', F, ['B', 2]), vi('actions', I64, ['B', 2]), vi('goal', I64, ['B']),
                vi('instruction_mask', F, ['B'])]
    step_outs = [vi('pred', F, ['B', 2, 3, 4, 4]), vi('grounding', F, ['B', 2, 2, 2])]
    step_model = g.model(step_ins, step_outs, 'denoiser_step')

    # denoiser.onnx: the same function in one graph, plus grounding_current
    g = G()
    cm4 = g.op('Reshape', ['context_mask', g.const([-1, 1, 1, 1], np.int64)])
    cm2 = g.op('Reshape', ['context_mask', g.const([-1, 1], np.int64)])
    mean = g.op('ReduceMean', ['context'], axes=[1], keepdims=0)
    newest = g.op('Gather', ['context', g.const(-1, np.int64)], axis=1)
    kk = g.op('Add', [g.op('Mul', [g.op('Mul', [mean, cm4]), g.const(Bc)]),
                      g.op('Mul', [g.op('Mul', [newest, cm4]), g.const(E)])])
    vm = g.op('ReduceMean', [g.op('Mul', ['context_positions', cm2])], axes=[1], keepdims=1)
    head(g, kk, g.op('Mul', [vm, g.const(Pc)]), 'instruction_mask')
    goal3 = g.op('Reshape', [g.op('Cast', ['goal'], to=F), g.const([-1, 1, 1], np.int64)])
    im3 = g.op('Reshape', ['instruction_mask', g.const([-1, 1, 1], np.int64)])
    g.op('Add', [g.op('Mul', [g.op('Mul', [goal3, g.const(0.5)]), im3]), g.const(Qgrid)], out='grounding_current')
    ins = denoiser_inputs(2, 3, 4, 4)
    outs = step_outs + [vi('grounding_current', F, ['B', 2, 2])]
    den = g.model(ins, outs, 'cached_full')
    tensors = {
        'denoiser': {'inputs': tensor_specs(ins), 'outputs': tensor_specs(outs)},
        'context': {'inputs': tensor_specs(ctx_ins), 'outputs': tensor_specs(ctx_outs)},
        'denoiserStep': {'inputs': tensor_specs(step_ins), 'outputs': tensor_specs(step_outs)},
    }
    man = manifest('fixture-cached', (4, 4), (3, 4, 4, 1.0), 'x0', {'kind': 'flow'}, 2, (1, 4), tensors,
                   {'denoiser': 'denoiser.onnx', 'context': 'context.onnx', 'denoiserStep': 'denoiser_step.onnx'},
                   goals=['chair', 'sofa'],
                   aux=[{'name': 'grounding', 'kind': 'mask', 'width': 2, 'height': 2},
                        {'name': 'grounding_current', 'kind': 'mask', 'width': 2, 'height': 2,
                         'frame': 'newest-context'}],
                   extra_prov={'fixture': {'A': A, 'B': Bc, 'E': E, 'C': C, 'G': Gc, 'D': D, 'P': Pc}},
                   description='cached-context split of a linear denoiser; denoiser.onnx is the same in one graph')
    save('cached', {'denoiser.onnx': den, 'context.onnx': ctx_model, 'denoiser_step.onnx': step_model}, man)


def make_latent():
    # encoder: frames [N,3,8,8] -> 2*avgpool2x2 -> latents [N,3,4,4]
    ge = G()
    pooled = ge.op('AveragePool', ['frames'], kernel_shape=[2, 2], strides=[2, 2])
    ge.op('Mul', [pooled, ge.const(2.0)], out='latents')
    enc = ge.model([vi('frames', F, ['N', 3, 8, 8])], [vi('latents', F, ['N', 3, 4, 4])], 'encoder')
    # decoder: latents [N,3,4,4] -> /2 -> nearest x2 -> frames [N,3,8,8]
    gd = G()
    half = gd.op('Mul', ['latents', gd.const(0.5)])
    gd.op('Resize', [half, '', gd.const([1, 1, 2, 2], np.float32)], out='frames', mode='nearest')
    dec = gd.model([vi('latents', F, ['N', 3, 4, 4])], [vi('frames', F, ['N', 3, 8, 8])], 'decoder')
    g = G()
    x0 = newest_plus_action(g, 3, 4, 4)
    s = g.op('Add', [x0, g.op('Mul', [g.op('Cast', [g.op('ReduceSum', ['goal'], keepdims=0)], to=F),
                                      g.const(0.0)])])
    g.op('Identity', [used_positions(g, s)], out='pred')
    ins = denoiser_inputs(2, 3, 4, 4)
    outs = [vi('pred', F, ['B', 2, 3, 4, 4])]
    den = g.model(ins, outs, 'latent')
    tensors = {
        'denoiser': {'inputs': tensor_specs(ins), 'outputs': tensor_specs(outs)},
        'encoder': {'inputs': {'frames': {'shape': ['N', 3, 8, 8], 'dtype': 'float32'}},
                    'outputs': {'latents': {'shape': ['N', 3, 4, 4], 'dtype': 'float32'}}},
        'decoder': {'inputs': {'latents': {'shape': ['N', 3, 4, 4], 'dtype': 'float32'}},
                    'outputs': {'frames': {'shape': ['N', 3, 8, 8], 'dtype': 'float32'}}},
    }
    man = manifest('fixture-latent', (8, 8), (3, 4, 4, 2.0), 'x0', {'kind': 'flow'}, 2, (1, 4), tensors,
                   {'denoiser': 'denoiser.onnx', 'encoder': 'encoder.onnx', 'decoder': 'decoder.onnx'},
                   description='encoder 2*avgpool2x2, decoder nearest-upsample(latents/2); '
                               'x0 = cm*newest + im*0.1*action')
    save('latent', {'denoiser.onnx': den, 'encoder.onnx': enc, 'decoder.onnx': dec}, man)


def make_bench():
    Hh, C, h, w = 4, 8, 8, 8
    T, P, D, M, L = 128, 16, 128, 256, 4  # tokens, token size, width, MLP width, layers
    g = G()
    k = [0]

    def weight(rows, cols):
        # sin() of a range, scaled 1/sqrt(rows): constant-folded at session creation, nothing stored.
        k[0] += 1
        r = g.op('Range', [g.const(0.0), g.const(float(rows * cols)), g.const(1.0)])
        s = g.op('Sin', [g.op('Add', [g.op('Mul', [r, g.const(0.7310 + 0.01 * k[0])]), g.const(0.1 * k[0])])])
        s = g.op('Mul', [s, g.const(float(np.sqrt(2.0 / rows)))])
        return g.op('Reshape', [s, g.const([rows, cols], np.int64)])

    tok = lambda x: g.op('Reshape', [x, g.const([-1, T, P], np.int64)])
    ctxmean = g.op('ReduceMean', ['context'], axes=[1], keepdims=1)
    cm, im = as_b5(g, 'context_mask'), as_b5(g, 'instruction_mask')
    ctx = g.op('Mul', [g.op('Expand', [ctxmean, g.const([1, Hh, 1, 1, 1], np.int64)]), cm])
    W0 = weight(P, D)
    X = g.op('Add', [g.op('MatMul', [tok('x_t'), W0]), g.op('MatMul', [tok(ctx), W0])])
    act = g.op('Reshape', [g.op('Cast', ['actions'], to=F), g.const([0, 0, 1, 1, 1], np.int64)])
    cond = g.op('Add', [g.op('Mul', [g.op('Mul', [act, im]), g.const(0.05)]),
                        g.op('Mul', [as_b5(g, 't'), g.const(0.01)])])
    cond = g.op('Expand', [cond, g.const([1, 1, C, h, w], np.int64)])
    X = g.op('Add', [X, g.op('MatMul', [tok(cond), W0])])
    for _ in range(L):
        Xn = g.op('Div', [X, g.op('Add', [g.op('ReduceMax', [g.op('Abs', [X])], axes=[2], keepdims=1),
                                          g.const(1.0)])])
        att = g.op('Softmax', [g.op('Mul', [g.op('MatMul', [Xn, g.op('Transpose', [Xn], perm=[0, 2, 1])]),
                                            g.const(1.0 / np.sqrt(D))])], axis=-1)
        X = g.op('Add', [X, g.op('MatMul', [g.op('MatMul', [att, Xn]), weight(D, D)])])
        Xn = g.op('Div', [X, g.op('Add', [g.op('ReduceMax', [g.op('Abs', [X])], axes=[2], keepdims=1),
                                          g.const(1.0)])])
        X = g.op('Add', [X, g.op('MatMul', [g.op('Relu', [g.op('MatMul', [Xn, weight(D, M)])]), weight(M, D)])])
    out = g.op('MatMul', [X, weight(D, P)])
    out = g.op('Reshape', [out, g.const([-1, Hh, C, h, w], np.int64)])
    s = g.op('Add', [out, g.op('Mul', [g.op('Cast', [g.op('ReduceSum', ['goal'], keepdims=0)], to=F),
                                       g.const(0.0)])])
    g.op('Identity', [used_positions(g, s)], out='pred')
    ins = denoiser_inputs(Hh, C, h, w)
    outs = [vi('pred', F, ['B', Hh, C, h, w])]
    den = g.model(ins, outs, 'bench')
    ge = G()
    pooled = ge.op('AveragePool', ['frames'], kernel_shape=[4, 4], strides=[4, 4])  # [N,3,8,8]
    ge.op('Concat', [pooled, pooled, ge.op('Slice', [pooled, ge.const([0], np.int64), ge.const([2], np.int64),
                                                     ge.const([1], np.int64)])], axis=1, out='latents')
    enc = ge.model([vi('frames', F, ['N', 3, 32, 32])], [vi('latents', F, ['N', C, h, w])], 'encoder')
    gd = G()
    rgb = gd.op('Slice', ['latents', gd.const([0], np.int64), gd.const([3], np.int64), gd.const([1], np.int64)])
    gd.op('Resize', [rgb, '', gd.const([1, 1, 4, 4], np.float32)], out='frames', mode='nearest')
    dec = gd.model([vi('latents', F, ['N', C, h, w])], [vi('frames', F, ['N', 3, 32, 32])], 'decoder')
    tensors = {
        'denoiser': {'inputs': tensor_specs(ins), 'outputs': tensor_specs(outs)},
        'encoder': {'inputs': {'frames': {'shape': ['N', 3, 32, 32], 'dtype': 'float32'}},
                    'outputs': {'latents': {'shape': ['N', C, h, w], 'dtype': 'float32'}}},
        'decoder': {'inputs': {'latents': {'shape': ['N', C, h, w], 'dtype': 'float32'}},
                    'outputs': {'frames': {'shape': ['N', 3, 32, 32], 'dtype': 'float32'}}},
    }
    man = manifest('fixture-bench', (32, 32), (C, h, w, 1.0), 'x0', {'kind': 'flow'}, Hh, (1, 6), tensors,
                   {'denoiser': 'denoiser.onnx', 'encoder': 'encoder.onnx', 'decoder': 'decoder.onnx'},
                   defaults={'sampler': {'kind': 'euler', 'steps': 4, 'shift': 1.0},
                             'guidance': {'kind': 'joint', 'scale': 1.5}},
                   description='weightless 4-layer transformer-like denoiser, 128 tokens a sample, width 128, '
                               'for bench/imagine.ts')
    save('bench', {'denoiser.onnx': den, 'encoder.onnx': enc, 'decoder.onnx': dec}, man)


if __name__ == '__main__':
    make_linear()
    make_echo()
    make_grounded()
    make_nan()
    make_bad_dtype()
    make_cached()
    make_latent()
    make_bench()
    for name in sorted(os.listdir(ROOT)):
        d = os.path.join(ROOT, name)
        sizes = ', '.join(f'{f} {os.path.getsize(os.path.join(d, f))} B' for f in sorted(os.listdir(d)))
        print(f'{name}: {sizes}')
    sys.exit(0)
