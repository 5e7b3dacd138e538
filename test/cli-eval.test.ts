/**
 * `v4s eval` through the real CLI entry (a child process under tsx), over real WebSockets on loopback:
 * JSONL rows, the printed aggregate table, `--resume`, `--parallel` against an external server (`--url`), and
 * usage errors (exit code 2, the flag named). Option parsing without side effects is also checked in-process
 * through `main()`, which is the same code the entry runs.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { readResults } from '../src/agent/results.js';
import { main } from '../src/cli/main.js';
import type { CliIO } from '../src/cli/common.js';
import { BuiltinSimulator } from '../src/sim-adapters/builtin/simulator.js';
import { SimulatorServer } from '../src/sim-adapters/ws-server.js';
import { runCli, tableHeader, tableRow, tempDir, removeTempDirs } from './cli-helpers.js';

/** Run `main()` in-process with captured output (for usage errors, which stop before anything runs). */
async function mainCaptured(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (l) => (out += `${l}\n`), err: (l) => (err += `${l}\n`), isTTY: false };
  const code = await main(argv, io);
  return { code, out, err };
}

describe('v4s eval (CLI)', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  it('runs the random planner over a real WebSocket, writes one JSONL row per episode and prints the table', async () => {
    const cwd = tempDir();
    const r = await runCli(['eval', '--planner', 'random', '--episodes', '2', '--max-steps', '20', '--out', 'r.jsonl'], cwd);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /served in-process at ws:\/\/127\.0\.0\.1:\d+/);
    const rows = await readResults(path.join(cwd, 'r.jsonl'));
    assert.deepEqual(
      rows.map((x) => x.key),
      ['random/objectnav/seed-200000', 'random/objectnav/seed-200001'],
    );
    for (const row of rows) {
      assert.equal(row.status, 'ok');
      assert.equal(row.task, 'objectnav');
      // The random planner never stops: every episode runs to the step limit, one decision per step.
      assert.equal(row.steps, 20);
      assert.equal(row.decisionLatenciesMs.length, 20);
      assert.equal(row.success, false);
      assert.equal(row.spl, 0);
      assert.ok(typeof row.shortestPathLength === 'number' && row.shortestPathLength > 0, 'the simulator reports ℓ');
    }
    assert.deepEqual(tableHeader(r.stdout), ['planner', 'task', 'episodes', 'aborted', 'success', '95% CI', 'SPL', 'SoftSPL', 'dist (m)', 'steps', 'p50 ms', 'p95 ms']);
    const cells = tableRow(r.stdout, 'random');
    assert.ok(cells !== undefined, r.stdout);
    assert.equal(cells[1], 'objectnav');
    assert.equal(cells[2], '2');
    assert.equal(cells[3], '0');
    assert.equal(cells[4], '0.0%');
    assert.equal(cells[5], '0.0–65.8%'); // Wilson 95 % interval of 0/2
    assert.equal(cells[6], '0.000');
    assert.equal(cells[9], '20.0');
    const meanDist = rows.reduce((s, x) => s + (x.distanceToGoal ?? NaN), 0) / rows.length;
    assert.equal(cells[8], meanDist.toFixed(2));
    // One progress line per episode, as it finished.
    assert.match(r.stdout, /\[1\/2\] seed 200000 {2}failure/);
    assert.match(r.stdout, /\[2\/2\] seed 200001 {2}failure/);
  });

  it('--resume skips finished rows and appends only the rest; without it a non-empty file is refused', async () => {
    const cwd = tempDir();
    const out = path.join(cwd, 'runs', 'r.jsonl');
    const first = await runCli(['eval', '--planner', 'heuristic', '--seeds', '200010..200011', '--max-steps', '15', '--out', 'runs/r.jsonl'], cwd);
    assert.equal(first.code, 0, first.stderr);
    const before = readFileSync(out, 'utf8');
    assert.equal(before.trim().split('\n').length, 2);

    // (in-process: the same entry code; it stops before running anything)
    const refused = await mainCaptured(['eval', '--planner', 'heuristic', '--seeds', '200010..200012', '--max-steps', '15', '--out', out]);
    assert.equal(refused.code, 2);
    assert.match(refused.err, /E_PATH: --out .*r\.jsonl already holds 2 rows: add --resume/);
    assert.equal(readFileSync(out, 'utf8'), before, 'a refused run leaves the file alone');

    const resumed = await runCli(['eval', '--planner', 'heuristic', '--seeds', '200010..200012', '--max-steps', '15', '--out', 'runs/r.jsonl', '--resume'], cwd);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /resume: 2 done, 1 to run/);
    assert.doesNotMatch(resumed.stdout, /seed 200010 /);
    assert.match(resumed.stdout, /\[3\/3\] seed 200012/);
    const after = readFileSync(out, 'utf8');
    assert.ok(after.startsWith(before), 'finished rows are kept byte for byte');
    const rows = await readResults(out);
    assert.deepEqual(
      rows.map((x) => x.seed),
      [200010, 200011, 200012],
    );
    assert.equal(tableRow(resumed.stdout, 'heuristic')?.[2], '3', 'the table aggregates the whole file');
  });

  it('--parallel 2 runs two agents on two connections of an external server (--url)', async () => {
    let created = 0;
    let maxOpenAtCreation = 0;
    let server: SimulatorServer | undefined;
    server = await SimulatorServer.start(
      () => {
        created++;
        maxOpenAtCreation = Math.max(maxOpenAtCreation, server?.connectionCount ?? 0);
        return new BuiltinSimulator();
      },
      { port: 0 },
    );
    try {
      const cwd = tempDir();
      const r = await runCli(['eval', '--planner', 'random', '--episodes', '4', '--max-steps', '30', '--parallel', '2', '--url', server.url, '--out', 'p.jsonl'], cwd);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`simulator: ${server.url.replace(/[.]/g, '\\.')}`));
      const rows = await readResults(path.join(cwd, 'p.jsonl'));
      assert.equal(rows.length, 4);
      assert.deepEqual(new Set(rows.map((x) => x.seed)), new Set([200000, 200001, 200002, 200003]));
      assert.equal(created, 2, 'one connection (one simulator) per agent');
      assert.equal(maxOpenAtCreation, 1, 'the second agent connected while the first was connected');
    } finally {
      await server.close();
    }
  });

  it('an unknown flag exits with code 2 and names the flag (real entry)', async () => {
    const r = await runCli(['eval', '--episodez', '3'], tempDir());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--episodez'/);
    assert.match(r.stderr, /--episodes/, 'suggests the right flag');
    assert.equal(r.stdout, '');
  });

  it('bad values exit with code 2 and name the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['eval', '--episodes', 'abc'], /--episodes <n>' argument 'abc' is invalid/],
      [['eval', '--episodes', '0'], /--episodes <n>' argument '0' is invalid/],
      [['eval', '--planner', 'genius'], /--planner <name>' argument 'genius' is invalid.*wm, no-imagination, oracle, random, heuristic/],
      [['eval', '--task', 'flynav'], /--task <task>' argument 'flynav' is invalid/],
      [['eval', '--seeds', '9..3'], /--seeds <A\.\.B>' argument '9\.\.3' is invalid.*descending/],
      [['eval', '--seeds', 'x'], /--seeds <A\.\.B>' argument 'x' is invalid/],
      [['eval', '--url', 'http://example.org'], /--url <ws-url>' argument 'http:\/\/example\.org' is invalid/],
      [['eval', '--parallel', '-1'], /--parallel <n>'/],
      [['eval', '--reconnect-tries', '0'], /--reconnect-tries <n>' argument '0' is invalid/],
      [['eval', '--planner', 'random', '--out', '../escape.jsonl'], /E_PATH: --out "\.\.\/escape\.jsonl": resolves to .*, outside .*; give an absolute path/],
      [['eval', '--planner', 'random', '--episodes', '5', '--seeds', '1..2'], /E_CONFIG: --episodes 5 exceeds the 2 seed\(s\) of --seeds 1\.\.2/],
      [['demo', '--max-steps', '1.5'], /--max-steps <n>' argument '1\.5' is invalid/],
      [['sim', '--port', '70000'], /--port <port>' argument '70000' is invalid/],
      [['dataset', '--split', 'test', '--scenes', '1', '--out', 'd'], /--split <split>' argument 'test' is invalid/],
      [['dataset', '--split', 'dev', '--out', 'd'], /required option '--scenes <n>' not specified/],
      [['fly'], /unknown command 'fly'/],
      [['sim', '--host', '0.0.0.0', '--port', '0'], /E_INSECURE_BIND/],
      [['dataset', '--split', 'dev', '--scenes', '1', '--out', '../../elsewhere'], /E_PATH: --out "\.\.\/\.\.\/elsewhere": resolves to/],
    ];
    for (const [argv, pattern] of cases) {
      const r = await mainCaptured(argv);
      assert.equal(r.code, 2, `${argv.join(' ')} → ${r.code}: ${r.err}`);
      assert.match(r.err, pattern, argv.join(' '));
    }
  });

  it('--help lists the evaluation flags and exits 0', async () => {
    const r = await mainCaptured(['eval', '--help']);
    assert.equal(r.code, 0);
    for (const flag of ['--planner', '--task', '--episodes', '--seeds', '--out', '--resume', '--parallel', '--model', '--candidates', '--steps', '--actions-per-plan', '--max-steps', '--url', '--reconnect-tries']) {
      assert.ok(r.out.includes(flag), `help mentions ${flag}`);
    }
  });

  it('--url: a simulator that is gone is retried --reconnect-tries times with back-off; each episode is then aborted (not failed) and the run goes on', async () => {
    // A port that was just free: nothing listens there (E_CONNECT, a transient failure).
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const address = probe.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const out = path.join(tempDir(), 'gone.jsonl');
    const r = await mainCaptured(['eval', '--planner', 'random', '--episodes', '2', '--max-steps', '5', '--url', `ws://127.0.0.1:${port}`, '--reconnect-tries', '3', '--out', out]);
    const rows = await readResults(out);
    assert.deepEqual(rows.map((x) => x.key), ['random/objectnav/seed-200000', 'random/objectnav/seed-200001'], `${r.code}: ${r.err}`);
    for (const row of rows) {
      assert.equal(row.status, 'aborted');
      assert.equal(row.errorCode, 'E_CONNECT');
      assert.equal(row.spl, null, 'not counted as a failure of the agent');
      assert.match(row.reason ?? '', /gave up after 3 tries over [\d.]+ s/);
    }
    assert.equal((r.err.match(/retrying in \d+ ms \(try \d of 3\)/g) ?? []).length, 4, '2 retries per episode, each reported');
  });

  it('a results file with a malformed row fails with exit 1 and names the line', async () => {
    const cwd = tempDir();
    writeFileSync(path.join(cwd, 'bad.jsonl'), '{"key":"a","status":"ok","success":false}\nnot json\n{"key":"b","status":"ok","success":true}\n');
    const r = await runCli(['eval', '--planner', 'random', '--episodes', '1', '--out', 'bad.jsonl', '--resume'], cwd);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_RESULTS_FILE: results file .*bad\.jsonl: line 2 is not valid JSON/);
  });
});
