/**
 * `v4s export-triton`: the Triton model repository it writes, parsed back (protobuf text format) and checked
 * against each package's manifest tensors and ONNX files; loaded by the OIP test double, which refuses a config
 * that disagrees with its model as Triton's onnxruntime backend does; and the command line.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { TRITON_DATA_TYPE, exportTriton, register, renderConfigPbtxt, tritonConfig } from '../src/cli/export-triton.js';
import { isV4sError, type V4sErrorCode } from '../src/errors.js';
import { loadManifest, type ModelManifest, type TensorSpec } from '../src/worldmodel/manifest.js';
import { serverModelNames } from '../src/worldmodel/remote-world-model.js';
import { SHIPPED_MODEL_DIR, shippedModelPresent } from './support/decisions.js';
import { OipDouble } from './support/oip-double.js';
import { PbMessage, parsePbtxt } from './support/pbtxt.js';
import { cleanupTemps, fixtureCopy, fixtureDir } from './worldmodel-helpers.js';

async function rejectsWith(p: Promise<unknown>, code: V4sErrorCode, ...parts: string[]): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isV4sError(e, code), `expected ${code}, got ${String(e)}`);
    for (const part of parts) assert.ok(e.message.includes(part), `message "${e.message}" lacks "${part}"`);
    return;
  }
  assert.fail(`expected ${code}, resolved instead`);
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'v4s-export-'));
  dirs.push(d);
  return d;
}
after(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  await cleanupTemps();
});

/** Check one parsed config.pbtxt against the manifest's tensors of its network. */
function checkAgainstManifest(cfg: PbMessage, m: ModelManifest, role: keyof ModelManifest['tensors'], name: string): void {
  const group = m.tensors[role];
  assert.ok(group, `manifest has ${role}`);
  assert.equal(cfg.string('name'), name);
  assert.equal(cfg.string('platform'), 'onnxruntime_onnx');
  const mbs = cfg.number('max_batch_size');
  const specs: [string, TensorSpec, PbMessage][] = [];
  for (const [side, declared] of [['input', group.inputs], ['output', group.outputs]] as const) {
    const list = cfg.messages(side);
    assert.deepEqual(list.map((t) => t.string('name')), Object.keys(declared), `${name}: ${side} names in manifest order`);
    for (const t of list) specs.push([t.string('name'), declared[t.string('name')] as TensorSpec, t]);
  }
  // Batchable exactly when every tensor starts with the same symbolic axis.
  const first = specs[0]?.[1].shape[0];
  const batchable = typeof first === 'string' && specs.every(([, s]) => s.shape[0] === first);
  assert.equal(mbs > 0, batchable, `${name}: max_batch_size ${mbs}`);
  assert.equal(cfg.has('dynamic_batching'), batchable, `${name}: dynamic_batching iff max_batch_size > 0`);
  for (const [tname, spec, t] of specs) {
    assert.equal(t.enumValue('data_type'), TRITON_DATA_TYPE[spec.dtype], `${name}/${tname} data_type`);
    const dims = t.numbers('dims');
    const full = batchable ? (spec.shape.length === 1 ? [] : spec.shape.slice(1)) : spec.shape;
    if (batchable && spec.shape.length === 1) {
      assert.deepEqual(dims, [1], `${name}/${tname}: a batch-only tensor is dims [1]`);
      assert.deepEqual(t.message('reshape').numbers('shape'), [], `${name}/${tname}: reshape { shape: [ ] }`);
      continue;
    }
    assert.equal(t.has('reshape'), false);
    assert.equal(dims.length, full.length, `${name}/${tname} rank`);
    full.forEach((d, i) => {
      if (typeof d === 'number') assert.equal(dims[i], d, `${name}/${tname} dim ${i} fixed in the manifest`);
      else assert.ok(dims[i] === -1 || (dims[i] as number) > 0, `${name}/${tname} dim ${i} (${d}) is -1 or the model's fixed value`);
    });
  }
  const groups = cfg.messages('instance_group');
  assert.equal(groups.length, 1);
  assert.equal(groups[0]?.enumValue('kind'), 'KIND_GPU');
  assert.equal(groups[0]?.number('count'), 1);
}

const packages: [string, string][] = [
  ['linear', fixtureDir('linear')],
  ['echo', fixtureDir('echo')],
  ['grounded', fixtureDir('grounded')],
  ['cached', fixtureDir('cached')],
  ['latent', fixtureDir('latent')],
  ['bench', fixtureDir('bench')],
];
if (shippedModelPresent()) packages.push(['shipped model', SHIPPED_MODEL_DIR]);

describe('export-triton: the model repository', function () {
  this.timeout(60_000);

  for (const [label, pkg] of packages) {
    it(`${label}: a folder per ONNX file with config.pbtxt (checked against the manifest) and 1/model.onnx; the double loads it`, async () => {
      const out = await tempDir();
      const res = await exportTriton(pkg, out);
      const m = await loadManifest(pkg);
      const names = serverModelNames(m);
      const roles = (Object.keys(m.files) as (keyof ModelManifest['files'])[]).filter((r) => m.files[r] !== undefined);
      assert.deepEqual(res.models.map((x) => x.role).sort(), [...roles].sort());
      assert.deepEqual((await readdir(out)).sort(), roles.map((r) => names[r]).sort());
      for (const role of roles) {
        const name = names[role] as string;
        const cfg = parsePbtxt(await readFile(path.join(out, name, 'config.pbtxt'), 'utf8'));
        checkAgainstManifest(cfg, m, role, name);
        assert.deepEqual(await readdir(path.join(out, name)), ['1', 'config.pbtxt']);
        const copied = await readFile(path.join(out, name, '1', 'model.onnx'));
        assert.ok(copied.equals(await readFile(path.join(pkg, m.files[role] as string))), `${name}/1/model.onnx is the package's ${m.files[role]}`);
      }
      const double = await OipDouble.start(out);
      assert.deepEqual(double.modelNames.sort(), roles.map((r) => names[r]).sort());
      await double.close();
    });
  }

  it('the cached-context networks carry the batch on another axis: max_batch_size 0, full dims, no dynamic batching', async () => {
    const out = await tempDir();
    const res = await exportTriton(fixtureDir('cached'), out);
    const byRole = new Map(res.models.map((x) => [x.role, x.config]));
    assert.equal(byRole.get('denoiser')?.maxBatchSize, 1024);
    assert.equal(byRole.get('context')?.maxBatchSize, 0);
    assert.equal(byRole.get('denoiserStep')?.maxBatchSize, 0);
    assert.deepEqual(byRole.get('context')?.outputs.map((o) => [o.name, o.dims]), [
      ['context_k', [2, -1, 3, 4, 4]],
      ['context_v', [2, -1, -1]],
      ['context_base', [-1, 3, 4, 4]],
    ]);
    assert.equal(byRole.get('context')?.dynamicBatching, false);
  });

  it('writes config.pbtxt byte for byte (the latent fixture encoder)', async () => {
    const out = await tempDir();
    await exportTriton(fixtureDir('latent'), out, { maxBatchSize: 64, instanceKind: 'cpu', instances: 2 });
    const text = await readFile(path.join(out, 'fixture-latent-encoder', 'config.pbtxt'), 'utf8');
    assert.equal(
      text,
      [
        '# Written by v4s export-triton from a v4s.model.v1 package; see docs/scaling.md.',
        'name: "fixture-latent-encoder"',
        'platform: "onnxruntime_onnx"',
        'max_batch_size: 64',
        'input [',
        '  {',
        '    name: "frames"',
        '    data_type: TYPE_FP32',
        '    dims: [ 3, 8, 8 ]',
        '  }',
        ']',
        'output [',
        '  {',
        '    name: "latents"',
        '    data_type: TYPE_FP32',
        '    dims: [ 3, 4, 4 ]',
        '  }',
        ']',
        'dynamic_batching { }',
        'instance_group [',
        '  {',
        '    count: 2',
        '    kind: KIND_CPU',
        '  }',
        ']',
        '',
      ].join('\n'),
    );
    // The denoiser's batch-only inputs, as Triton needs them.
    const den = parsePbtxt(await readFile(path.join(out, 'fixture-latent-denoiser', 'config.pbtxt'), 'utf8'));
    const t = den.messages('input').find((x) => x.string('name') === 't');
    assert.deepEqual(t?.numbers('dims'), [1]);
    assert.deepEqual(t?.message('reshape').numbers('shape'), []);
  });

  it('the double refuses a config that disagrees with its model (as Triton would), so the checks above have teeth', async () => {
    const m = await loadManifest(fixtureDir('latent'));
    const good = tritonConfig('fixture-latent-encoder', m, 'encoder', undefined);
    const out = await tempDir();
    await exportTriton(fixtureDir('latent'), out);
    const cfgFile = path.join(out, 'fixture-latent-encoder', 'config.pbtxt');
    await writeFile(cfgFile, renderConfigPbtxt({ ...good, inputs: [{ name: 'frames', dataType: 'TYPE_FP32', dims: [3, 8, 9] }] }));
    await assert.rejects(OipDouble.start(out), /fixture-latent-encoder.*"frames": dim 3 is 8 in the model, 9 in config/);
    await writeFile(cfgFile, renderConfigPbtxt({ ...good, inputs: [{ name: 'frames', dataType: 'TYPE_INT64', dims: [3, 8, 8] }] }));
    await assert.rejects(OipDouble.start(out), /"frames": config data_type TYPE_INT64, model float32/);
  });

  it('refuses a package whose manifest disagrees with its ONNX file (E_MODEL_TENSOR), and existing folders without force (E_PATH)', async () => {
    const broken = await fixtureCopy('linear');
    await copyFile(path.join(fixtureDir('echo'), 'denoiser.onnx'), path.join(broken, 'denoiser.onnx'));
    await rejectsWith(exportTriton(broken, await tempDir()), 'E_MODEL_TENSOR', 'denoiser.onnx', 'x_t');
    await rejectsWith(exportTriton(path.join(os.tmpdir(), 'no-such-package-v4s'), await tempDir()), 'E_MODEL_FILE', 'manifest.json');
    const out = await tempDir();
    await exportTriton(fixtureDir('linear'), out);
    await rejectsWith(exportTriton(fixtureDir('linear'), out), 'E_PATH', 'fixture-linear-denoiser', '--force');
    const again = await exportTriton(fixtureDir('linear'), out, { force: true, prefix: '', contextCache: false });
    assert.deepEqual(again.models.map((x) => x.config.name), ['denoiser']);
  });
});

describe('export-triton: the command', function () {
  this.timeout(30_000);

  async function run(args: string[]): Promise<{ code: number; out: string[] }> {
    const out: string[] = [];
    const program = new Command('v4s').exitOverride().configureOutput({ writeErr: () => undefined });
    register(program, { out: (l) => out.push(l), err: (l) => out.push(l), isTTY: false });
    process.exitCode = undefined;
    await program.parseAsync(['export-triton', ...args], { from: 'user' });
    const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
    process.exitCode = undefined;
    return { code, out };
  }

  it('v4s export-triton <package> <out-dir> [--prefix --max-batch-size --instance-kind --no-context-cache] writes the repository and says how to serve it', async () => {
    const out = path.join(await tempDir(), 'repo');
    const { code, out: lines } = await run([fixtureDir('cached'), out, '--prefix', 'wm_', '--max-batch-size', '96', '--instance-kind', 'cpu', '--no-context-cache']);
    assert.equal(code, 0);
    assert.deepEqual(await readdir(out), ['wm_denoiser']);
    const cfg = parsePbtxt(await readFile(path.join(out, 'wm_denoiser', 'config.pbtxt'), 'utf8'));
    assert.equal(cfg.number('max_batch_size'), 96);
    assert.equal(cfg.messages('instance_group')[0]?.enumValue('kind'), 'KIND_CPU');
    const text = lines.join('\n');
    assert.match(text, /wm_denoiser\s+denoiser\s+max_batch_size 96, dynamic batching/);
    assert.match(text, /docker run --gpus all --rm -p8000:8000 -v .*repo:\/models nvcr\.io\/nvidia\/tritonserver:<ver>-py3 tritonserver --model-repository=\/models/);
    assert.match(text, /prefix: 'wm_'/);
  });

  it('rejects bad option values by name', async () => {
    await assert.rejects(run([fixtureDir('linear'), 'x', '--max-batch-size', '0']), /--max-batch-size/);
    await assert.rejects(run([fixtureDir('linear'), 'x', '--instance-kind', 'tpu']), /--instance-kind/);
    await assert.rejects(run([fixtureDir('linear'), 'x', '--prefix', 'a/b']), /--prefix/);
  });
});
