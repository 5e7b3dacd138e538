/**
 * Issue 8 §1 (an interrupted evaluation), at the CLI level: the real `v4s eval` entry (a child process under
 * tsx, the built-in simulator served in-process over a real socket) is killed with SIGKILL mid-run; the same
 * command with `--resume` finishes it with no row lost and none duplicated, the rows written before the kill
 * kept byte for byte. (test/agent-results.test.ts does the same for `runEvaluation` itself.)
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { readResults } from '../src/agent/results.js';
import { runCli, spawnCli, tempDir } from './cli-helpers.js';

describe('reliability: v4s eval killed with SIGKILL, then --resume', () => {
  it('finishes the run: every seed once, the rows from before the kill unchanged', async function () {
    this.timeout(120_000);
    const cwd = tempDir('v4s-kill-');
    const out = path.join(cwd, 'r.jsonl');
    const episodes = 30;
    const args = ['eval', '--planner', 'random', '--seeds', `200000..${200000 + episodes - 1}`, '--max-steps', '20', '--out', 'r.jsonl'];
    const child = spawnCli(args, cwd);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    let running = true;
    const exited = new Promise<void>((resolve) =>
      child.on('close', () => {
        running = false;
        resolve();
      }),
    );
    const lines = (): number => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').length - 1 : 0);
    for (let i = 0; i < 2400 && running && lines() < 4; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(running, `v4s eval ended before it could be killed: ${stderr}`);
    child.kill('SIGKILL');
    await exited;
    const before = await readResults(out);
    assert.ok(before.length >= 4 && before.length < episodes, `killed after ${before.length} rows`);
    const text = readFileSync(out, 'utf8');
    const complete = text.slice(0, text.lastIndexOf('\n') + 1); // a row cut by the kill is not a row

    const resumed = await runCli([...args, '--resume'], cwd, 110_000);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, new RegExp(`resume: ${before.length} done, ${episodes - before.length} to run`));
    const after = await readResults(out);
    assert.equal(after.length, episodes);
    assert.deepEqual(
      after.map((r) => r.seed).sort((a, b) => (a ?? 0) - (b ?? 0)),
      Array.from({ length: episodes }, (_, i) => 200000 + i),
      'every seed exactly once',
    );
    assert.ok(readFileSync(out, 'utf8').startsWith(complete), 'the rows written before the kill are kept byte for byte');
    assert.ok(after.every((r) => r.status === 'ok'));
  });
});
