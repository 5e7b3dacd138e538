/**
 * RemoteWorldModel and OipClient over HTTP, against test/support/oip-double.ts: a TEST DOUBLE of the published
 * Open Inference Protocol v2 (KServe v2 REST with Triton's binary tensor data extension), because Triton cannot
 * run on this machine. The double serves the Triton model repository `exportTriton` writes and runs the real
 * ONNX files with onnxruntime-node, so a remote decision is computed, and compared with the local runtime's.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readResults } from '../src/agent/results.js';
import { main } from '../src/cli/main.js';
import type { CliIO } from '../src/cli/common.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportTriton } from '../src/cli/export-triton.js';
import { isV4sError, type V4sErrorCode } from '../src/errors.js';
import { OipClient } from '../src/worldmodel/oip/client.js';
import { loadWorldModel, type OnnxWorldModel } from '../src/worldmodel/onnx-world-model.js';
import { connectRemoteWorldModel, serverModelNames, type RemoteWorldModel } from '../src/worldmodel/remote-world-model.js';
import type { ImagineRequest } from '../src/worldmodel/world-model.js';
import { SHIPPED_MODEL_DIR, agentRequest, decide, patternFrame, rolloutDiff, shippedModelPresent } from './support/decisions.js';
import { OipDouble } from './support/oip-double.js';
import { assertClose, fixtureDir } from './worldmodel-helpers.js';

async function rejectsWith(p: Promise<unknown>, code: V4sErrorCode, ...parts: string[]): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(isV4sError(e, code), `expected ${code}, got ${String(e)}`);
    for (const part of parts) assert.ok(e.message.includes(part), `message "${e.message}" lacks "${part}"`);
    return e.message;
  }
  assert.fail(`expected ${code}, resolved instead`);
}

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Export a package to a temporary Triton repository and serve it with the double. */
async function serve(pkg: string): Promise<OipDouble> {
  const repo = await mkdtemp(path.join(os.tmpdir(), 'v4s-triton-'));
  cleanup.push(() => rm(repo, { recursive: true, force: true }));
  await exportTriton(pkg, repo);
  const double = await OipDouble.start(repo);
  cleanup.push(() => double.close());
  return double;
}

async function local(pkg: string): Promise<OnnxWorldModel> {
  const wm = await loadWorldModel(pkg, { threads: 1 });
  cleanup.push(() => wm.dispose());
  return wm;
}

async function remote(double: OipDouble, pkg: string, options: Partial<Parameters<typeof connectRemoteWorldModel>[0]> = {}): Promise<RemoteWorldModel> {
  const wm = await connectRemoteWorldModel({ url: double.url, manifest: pkg, ...options });
  cleanup.push(() => wm.dispose());
  return wm;
}

// [label, package, light]: the shipped model (64×64, a 1.5 M-parameter transformer) runs one configuration only.
const packages: [string, string, boolean][] = [
  ['cached (context.onnx + denoiser_step.onnx, grounding, grounding_current)', fixtureDir('cached'), false],
  ['latent (encoder + decoder)', fixtureDir('latent'), false],
  ['grounded (pixel space, grounding)', fixtureDir('grounded'), false],
];
if (shippedModelPresent()) packages.push(['the shipped model', SHIPPED_MODEL_DIR, true]);

describe('remote world model: a remote decision equals the local one', function () {
  this.timeout(60_000);

  for (const [label, pkg, light] of packages) {
    it(`${label}: same seed → latents within 1e-5, same frames and grounding, same chosen candidate`, async () => {
      const double = await serve(pkg);
      const [loc, rem] = [await local(pkg), await remote(double, pkg)];
      assert.deepEqual(rem.info, loc.info);
      assert.equal(rem.contextCache, loc.contextCache);
      const m = loc.manifest;
      const configs = [
        [0, undefined],
        [1, { kind: 'two-scale', context: 1.5, instruction: 2.5 }],
      ] as const;
      for (const [agent, guidance] of light ? configs.slice(0, 1) : configs) {
        const req: ImagineRequest = { ...agentRequest(m, agent, { candidates: 4 }), ...(guidance ? { guidance } : {}) };
        const [la, ra] = [await loc.sampleLatents(req), await rem.sampleLatents(req)];
        la.forEach((r, c) => assertClose(ra[c]?.latents ?? [], r.latents, 0, 1e-5, `agent ${agent} candidate ${c} latents`));
        const [li, ri] = [await loc.imagine(req), await rem.imagine(req)];
        const diff = rolloutDiff(ri, li);
        assert.equal(diff.frames, 0, 'frames (uint8) equal');
        assert.ok(diff.grounding <= 1e-5, `grounding within 1e-5 (${diff.grounding})`);
        const goal = patternFrame(m.resolution.width, m.resolution.height, 9, 0);
        const [dl, dr] = [decide(li, goal), decide(ri, goal)];
        assert.equal(dr.chosen, dl.chosen, 'same chosen candidate');
        assertClose(dr.scores, dl.scores, 0, 1e-5, 'scores');
        assert.ok(new Set(dl.scores.map((s) => s.toFixed(6))).size > 1, 'the candidates score differently (the choice is not a tie)');
      }
    });
  }

  it('each denoising step is ONE infer request carrying every candidate × guidance branch (batch = branches × candidates)', async () => {
    const pkg = fixtureDir('cached');
    const double = await serve(pkg);
    const rem = await remote(double, pkg);
    const names = serverModelNames(rem.manifest);
    const req: ImagineRequest = { ...agentRequest(rem.manifest, 2, { candidates: 5 }), sampler: { kind: 'euler', steps: 4 }, guidance: { kind: 'two-scale', context: 1.5, instruction: 3 } };
    const before = double.log.length;
    await rem.imagine(req);
    const posts = double.log.slice(before).filter((e) => e.method === 'POST');
    // context.onnx once, denoiser_step.onnx for steps 1..3, the full denoiser for the last (grounding_current wanted).
    assert.deepEqual(
      posts.map((e) => e.path),
      [names.context, names.denoiserStep, names.denoiserStep, names.denoiserStep, names.denoiser].map((n) => `/v2/models/${n}/infer`),
    );
    const headers = double.inferHeaders(names.denoiserStep as string).slice(-3);
    for (const h of headers) {
      const xt = (h['inputs'] as { name: string; shape: number[] }[]).find((i) => i.name === 'x_t');
      assert.deepEqual(xt?.shape.slice(0, 1), [3 * 5], '3 branches × 5 candidates in one request');
      assert.deepEqual(h['outputs'], [{ name: 'pred', parameters: { binary_data: true } }]);
    }
    // context.onnx: one row per distinct context mask (∅ and ctx); its batch axis is axis 0 of its inputs.
    const ctx = double.inferHeaders(names.context as string).at(-1);
    assert.deepEqual((ctx?.['inputs'] as { name: string; shape: number[] }[]).map((i) => [i.name, i.shape[0]]), [
      ['context', 2],
      ['context_positions', 2],
      ['context_mask', 2],
    ]);
    assert.equal(rem.stats().sessionRuns, 5);
  });
});

describe('remote world model: the HTTP exchange, byte for byte (Triton binary tensor data extension)', function () {
  this.timeout(30_000);

  it('one echo-denoiser evaluation: request and response bodies and headers equal bytes written from the specification', async () => {
    const pkg = fixtureDir('echo');
    const double = await serve(pkg);
    const client = new OipClient(double.url, { retries: 0 });
    cleanup.push(async () => client.close());
    const f32 = (...v: number[]): Float32Array => Float32Array.from(v);
    const i64 = (...v: bigint[]): BigInt64Array => BigInt64Array.from(v);
    const ctx = new Float32Array(12);
    ctx[0] = 0.25;
    // Batch-only tensors are [B, 1] on the wire: Triton's dims [1] + reshape { shape: [ ] } (see export-triton).
    const inputs = [
      { name: 'x_t', datatype: 'FP32', shape: [1, 4, 3, 2, 2], data: new Float32Array(48) },
      { name: 't', datatype: 'FP32', shape: [1, 1], data: f32(0.5) },
      { name: 'context', datatype: 'FP32', shape: [1, 1, 3, 2, 2], data: ctx },
      { name: 'context_positions', datatype: 'FP32', shape: [1, 1], data: f32(0) },
      { name: 'target_positions', datatype: 'FP32', shape: [1, 4], data: f32(1, 2, 3, 4) },
      { name: 'actions', datatype: 'INT64', shape: [1, 4], data: i64(1n, 2n, 3n, 1n) },
      { name: 'goal', datatype: 'INT64', shape: [1, 1], data: i64(2n) },
      { name: 'context_mask', datatype: 'FP32', shape: [1, 1], data: f32(1) },
      { name: 'instruction_mask', datatype: 'FP32', shape: [1, 1], data: f32(1) },
    ] as const;
    const res = await client.infer('fixture-echo-denoiser', inputs, ['pred']);

    // The request, written out by hand from the specification: compact JSON, then each input's bytes.
    const expectedJson =
      '{"id":"1","inputs":[' +
      '{"name":"x_t","shape":[1,4,3,2,2],"datatype":"FP32","parameters":{"binary_data_size":192}},' +
      '{"name":"t","shape":[1,1],"datatype":"FP32","parameters":{"binary_data_size":4}},' +
      '{"name":"context","shape":[1,1,3,2,2],"datatype":"FP32","parameters":{"binary_data_size":48}},' +
      '{"name":"context_positions","shape":[1,1],"datatype":"FP32","parameters":{"binary_data_size":4}},' +
      '{"name":"target_positions","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}},' +
      '{"name":"actions","shape":[1,4],"datatype":"INT64","parameters":{"binary_data_size":32}},' +
      '{"name":"goal","shape":[1,1],"datatype":"INT64","parameters":{"binary_data_size":8}},' +
      '{"name":"context_mask","shape":[1,1],"datatype":"FP32","parameters":{"binary_data_size":4}},' +
      '{"name":"instruction_mask","shape":[1,1],"datatype":"FP32","parameters":{"binary_data_size":4}}],' +
      '"outputs":[{"name":"pred","parameters":{"binary_data":true}}]}';
    const le32 = (...v: number[]): Buffer => {
      const b = Buffer.alloc(4 * v.length);
      v.forEach((x, i) => b.writeFloatLE(x, 4 * i));
      return b;
    };
    const le64 = (...v: number[]): Buffer => {
      const b = Buffer.alloc(8 * v.length);
      v.forEach((x, i) => b.writeBigInt64LE(BigInt(x), 8 * i));
      return b;
    };
    const expectedBody = Buffer.concat([
      Buffer.from(expectedJson),
      Buffer.alloc(192),
      le32(0.5),
      le32(0.25, ...new Array<number>(11).fill(0)),
      le32(0),
      le32(1, 2, 3, 4),
      le64(1, 2, 3, 1),
      le64(2),
      le32(1),
      le32(1),
    ]);
    const sent = double.log.filter((e) => e.method === 'POST').at(-1);
    assert.ok(sent);
    assert.equal(sent.path, '/v2/models/fixture-echo-denoiser/infer');
    assert.equal(sent.headers['content-type'], 'application/octet-stream');
    assert.equal(sent.headers['inference-header-content-length'], String(Buffer.byteLength(expectedJson)));
    assert.equal(sent.headers['content-length'], String(Buffer.byteLength(expectedJson) + 312));
    assert.equal(sent.headers['connection'], 'keep-alive');
    assert.equal(sent.body.toString('hex'), expectedBody.toString('hex'));

    // The response: what reached the model, echoed (t, masks, goal, target positions, actions, positions, context).
    const echoed = [0.5, 1, 1, 2, 1, 2, 3, 4, 1, 2, 3, 1, 0, 0.25, ...new Array<number>(34).fill(0)];
    const responseJson = '{"model_name":"fixture-echo-denoiser","model_version":"1","id":"1","outputs":[{"name":"pred","shape":[1,4,3,2,2],"datatype":"FP32","parameters":{"binary_data_size":192}}]}';
    assert.equal(sent.status, 200);
    assert.equal(sent.responseHeaders['Content-Type'], 'application/octet-stream');
    assert.equal(sent.responseHeaders['Inference-Header-Content-Length'], String(Buffer.byteLength(responseJson)));
    assert.equal(sent.responseBody.toString('hex'), Buffer.concat([Buffer.from(responseJson), le32(...echoed)]).toString('hex'));
    assert.equal(res.id, '1');
    assert.equal(res.modelName, 'fixture-echo-denoiser');
    assert.deepEqual(res.outputs.map((o) => [o.name, o.datatype, o.shape]), [['pred', 'FP32', [1, 4, 3, 2, 2]]]);
    assert.deepEqual([...(res.outputs[0]?.data as Float32Array)], echoed);
  });

  it('the double also answers a pure-JSON request (no binary extension) with JSON outputs, as the core specification requires', async () => {
    const double = await serve(fixtureDir('echo'));
    const body = JSON.stringify({
      id: '42',
      inputs: [
        { name: 'x_t', shape: [1, 4, 3, 2, 2], datatype: 'FP32', data: new Array<number>(48).fill(0) },
        { name: 't', shape: [1, 1], datatype: 'FP32', data: [[0.75]] },
        { name: 'context', shape: [1, 1, 3, 2, 2], datatype: 'FP32', data: new Array<number>(12).fill(0.5) },
        { name: 'context_positions', shape: [1, 1], datatype: 'FP32', data: [0] },
        { name: 'target_positions', shape: [1, 4], datatype: 'FP32', data: [[1, 2, 3, 4]] },
        { name: 'actions', shape: [1, 4], datatype: 'INT64', data: [3, 3, 2, 1] },
        { name: 'goal', shape: [1, 1], datatype: 'INT64', data: [0] },
        { name: 'context_mask', shape: [1, 1], datatype: 'FP32', data: [0] },
        { name: 'instruction_mask', shape: [1, 1], datatype: 'FP32', data: [1] },
      ],
      outputs: [{ name: 'pred' }],
    });
    const r = await fetch(`${double.url}/v2/models/fixture-echo-denoiser/infer`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(r.headers.get('inference-header-content-length'), null);
    const json = (await r.json()) as { id: string; outputs: { name: string; shape: number[]; datatype: string; data: number[] }[] };
    assert.equal(json.id, '42');
    assert.deepEqual(json.outputs[0]?.data.slice(0, 14), [0.75, 0, 1, 0, 1, 2, 3, 4, 3, 3, 2, 1, 0, 0.5]);
  });

  it('health and metadata: 200 with an empty body, metadata with -1 for the batch axis and [B,1] for batch-only tensors', async () => {
    const double = await serve(fixtureDir('echo'));
    const client = new OipClient(double.url);
    cleanup.push(async () => client.close());
    assert.equal(await client.serverLive(), true);
    assert.equal(await client.serverReady(), true);
    assert.equal(await client.modelReady('fixture-echo-denoiser'), true);
    assert.equal(await client.modelReady('fixture-echo-denoiser', '1'), true);
    const ready = double.log.find((e) => e.path === '/v2/health/ready');
    assert.equal(ready?.status, 200);
    assert.equal(ready?.responseBody.length, 0);
    const server = await client.serverMetadata();
    assert.ok(server.extensions.includes('binary_tensor_data'));
    const meta = await client.modelMetadata('fixture-echo-denoiser');
    assert.deepEqual(meta.versions, ['1']);
    assert.equal(meta.platform, 'onnxruntime_onnx');
    assert.deepEqual(
      meta.inputs.map((t) => `${t.name}:${t.datatype}:[${t.shape.join(',')}]`),
      ['x_t:FP32:[-1,4,3,2,2]', 't:FP32:[-1,1]', 'context:FP32:[-1,-1,3,2,2]', 'context_positions:FP32:[-1,-1]', 'target_positions:FP32:[-1,4]', 'actions:INT64:[-1,4]', 'goal:INT64:[-1,1]', 'context_mask:FP32:[-1,1]', 'instruction_mask:FP32:[-1,1]'],
    );
    assert.deepEqual(meta.outputs, [{ name: 'pred', datatype: 'FP32', shape: [-1, 4, 3, 2, 2] }]);
    await rejectsWith(client.modelMetadata('nope'), 'E_REMOTE', 'HTTP 400', "unknown model: 'nope'");
  });
});

describe('remote world model: checks, errors, retries, keep-alive', function () {
  this.timeout(30_000);
  let double: OipDouble;
  const pkg = fixtureDir('linear');
  before(async () => {
    double = await serve(pkg);
  });
  afterEach(() => {
    double.faults.length = 0;
    double.ready = true;
  });

  it("connect checks each model's metadata against the manifest (E_MODEL_TENSOR naming the remote model and tensor)", async () => {
    // The grounded package declares a grounding output; the linear model served under its name has none.
    await rejectsWith(
      connectRemoteWorldModel({ url: double.url, manifest: fixtureDir('grounded'), models: { denoiser: 'fixture-linear-denoiser' } }),
      'E_MODEL_TENSOR',
      'remote model "fixture-linear-denoiser"',
      'output "grounding"',
      'not found in the model',
    );
    await rejectsWith(connectRemoteWorldModel({ url: double.url, manifest: fixtureDir('grounded') }), 'E_REMOTE', 'HTTP 400', "unknown model: 'fixture-grounded-denoiser'");
  });

  it('addresses a model version when asked (/versions/{v}); an unknown version is E_REMOTE', async () => {
    const wm = await remote(double, pkg, { version: '1' });
    const before = double.log.length;
    await wm.imagine(agentRequest(wm.manifest, 1));
    assert.ok(double.log.slice(before).every((e) => e.path === '/v2/models/fixture-linear-denoiser/versions/1/infer'));
    await rejectsWith(connectRemoteWorldModel({ url: double.url, manifest: pkg, version: '2' }), 'E_REMOTE', '/versions/2', 'HTTP 400', 'version 2 is not found');
  });

  it('a server that is not ready: E_REMOTE; waitReadyMs polls until it is', async () => {
    double.ready = false;
    await rejectsWith(connectRemoteWorldModel({ url: double.url, manifest: pkg }), 'E_REMOTE', '/v2/health/ready', 'not ready');
    setTimeout(() => (double.ready = true), 300);
    const wm = await connectRemoteWorldModel({ url: double.url, manifest: pkg, waitReadyMs: 5000 });
    await wm.dispose();
  });

  it('an HTTP error is E_REMOTE with the server\'s {"error"} message, not retried', async () => {
    const wm = await remote(double, pkg, { retryDelayMs: 1 });
    double.faults.push({ match: (m) => m === 'POST', status: 400, body: JSON.stringify({ error: 'inference request batch-size must be <= 8' }), times: 1 });
    const before = wm.requestStats().requests;
    await rejectsWith(wm.imagine(agentRequest(wm.manifest, 0)), 'E_REMOTE', 'POST', '/infer', 'HTTP 400', 'batch-size must be <= 8');
    assert.equal(wm.requestStats().requests - before, 1, 'a 400 is not retried');
    double.faults.push({ match: (m) => m === 'POST', status: 500, body: 'plain text failure', times: 1 });
    await rejectsWith(wm.imagine(agentRequest(wm.manifest, 0)), 'E_REMOTE', 'HTTP 500', 'plain text failure');
    // Bad input from the SDK side is named by the server's message (the double checks shapes as Triton does).
    const raw = new OipClient(double.url);
    cleanup.push(async () => raw.close());
    await rejectsWith(raw.infer('fixture-linear-denoiser', [{ name: 'x_t', datatype: 'INT64', shape: [1], data: new BigInt64Array(1) }], ['pred']), 'E_REMOTE', "data-type is 'INT64'", "expects 'FP32'");
  });

  it('retries 503 and dropped connections, for GETs and for infer (idempotent); the result is unchanged', async () => {
    double.faults.push({ match: (m, p) => m === 'GET' && p.startsWith('/v2/models/'), status: 503, body: '{"error":"loading"}', times: 1 });
    const wm = await remote(double, pkg, { retryDelayMs: 1 });
    assert.equal(wm.requestStats().retries, 1, 'the metadata GET was retried');
    const req = agentRequest(wm.manifest, 3);
    const clean = await wm.imagine(req);
    const s0 = wm.requestStats();
    double.faults.push({ match: (m) => m === 'POST', status: 503, body: '{"error":"busy"}', times: 1 });
    double.faults.push({ match: (m) => m === 'POST', destroy: true, times: 1 });
    const retried = await wm.imagine(req);
    const s1 = wm.requestStats();
    assert.equal(s1.retries - s0.retries, 2);
    assert.equal(rolloutDiff(retried, clean).frames, 0);
    double.faults.push({ match: (m) => m === 'POST', status: 503, body: '{"error":"still busy"}', times: 10 });
    await rejectsWith(wm.imagine(req), 'E_REMOTE', 'HTTP 503', 'still busy');
  });

  it('a reply slower than timeoutMs is E_TIMEOUT; an unreachable server is E_CONNECT', async () => {
    const wm = await remote(double, pkg, { timeoutMs: 100, retries: 1, retryDelayMs: 1 });
    double.faults.push({ match: (m) => m === 'POST', delayMs: 400, times: 2 });
    await rejectsWith(wm.imagine(agentRequest(wm.manifest, 0)), 'E_TIMEOUT', '/infer', '100 ms', '2 attempts');
    // A port that was just free: nothing listens there.
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await rejectsWith(connectRemoteWorldModel({ url: `http://127.0.0.1:${port}`, manifest: pkg, retries: 1, retryDelayMs: 1 }), 'E_CONNECT', `127.0.0.1:${port}`, 'ECONNREFUSED');
    assert.throws(() => new OipClient('ftp://x'), (e: unknown) => isV4sError(e, 'E_CONFIG'));
  });

  it('keeps its connection alive: many calls, one socket', async () => {
    const wm = await remote(double, pkg);
    for (let i = 0; i < 3; i++) await wm.imagine(agentRequest(wm.manifest, i));
    const s = wm.requestStats();
    assert.ok(s.requests >= 3 * 3 + 2, `requests ${s.requests}`);
    assert.equal(s.socketsOpened, 1);
    assert.ok(s.bytesSent > 0 && s.bytesReceived > 0);
  });
});

describe('v4s eval --remote: the CLI plans through an Open Inference Protocol v2 server (test double of the published protocol)', function () {
  this.timeout(120_000);
  it('runs the wm planner with every network served by the double, and writes the episode row', async function () {
    if (!shippedModelPresent()) this.skip();
    const double = await serve(SHIPPED_MODEL_DIR);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'v4s-remote-eval-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const out = path.join(dir, 'r.jsonl');
    let text = '';
    const io: CliIO = { out: (l) => (text += `${l}\n`), err: (l) => (text += `${l}\n`), isTTY: false };
    const code = await main(['eval', '--planner', 'wm', '--episodes', '1', '--max-steps', '3', '--candidates', '3', '--remote', double.url, '--out', out], io);
    assert.equal(code, 0, text);
    assert.match(text, new RegExp(`served at ${double.url.replace(/[.]/g, '\\.')}`));
    const rows = await readResults(out);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.status, 'ok');
    assert.ok((rows[0]?.decisionLatenciesMs.length ?? 0) >= 1);
    // Every decision's denoising ran on the server: the step denoiser answered infer requests.
    const names = serverModelNames(JSON.parse(await readFile(path.join(SHIPPED_MODEL_DIR, 'manifest.json'), 'utf8')) as Parameters<typeof serverModelNames>[0]);
    assert.ok(names.denoiserStep !== undefined);
    assert.ok(double.inferCount(names.denoiserStep) >= 2, `step denoiser infer requests: ${double.inferCount(names.denoiserStep)}`);
    assert.ok(double.inferCount(names.encoder) >= 1);
  });

  it('a URL that is not http(s) is a usage error naming the flag', async () => {
    let text = '';
    const io: CliIO = { out: (l) => (text += `${l}\n`), err: (l) => (text += `${l}\n`), isTTY: false };
    const code = await main(['eval', '--planner', 'wm', '--remote', 'ws://127.0.0.1:1'], io);
    assert.equal(code, 2);
    assert.match(text, /--remote/);
    assert.match(text, /http/);
  });
});
