/**
 * `v4s demo` through the real CLI entry with tiny settings: the per-episode HTML report (real frames, every
 * candidate's imagined rollout, the chosen one, metrics) and PNG strip, results.jsonl, index.html, the table;
 * and the fallback to the random planner when the model package is missing. The world model here is the
 * simulator oracle (over the same real WebSocket), which needs no model package; the HTML structure is the
 * same for every world model.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { readResults } from '../src/agent/results.js';
import type { CliIO } from '../src/cli/common.js';
import { main } from '../src/cli/main.js';
import { runCli, tableRow, tempDir, removeTempDirs } from './cli-helpers.js';

function decodePng(bytes: Buffer): PNG {
  return PNG.sync.read(bytes);
}

/** `<article class="decision" …>…</article>` blocks of a report. */
function decisions(html: string): { attrs: Record<string, string>; body: string }[] {
  const out: { attrs: Record<string, string>; body: string }[] = [];
  for (const m of html.matchAll(/<article class="decision"([^>]*)>([\s\S]*?)<\/article>/g)) {
    const attrs: Record<string, string> = {};
    for (const a of (m[1] ?? '').matchAll(/data-([a-z]+)="([^"]*)"/g)) attrs[a[1] ?? ''] = a[2] ?? '';
    out.push({ attrs, body: m[2] ?? '' });
  }
  return out;
}

describe('v4s demo (CLI)', function () {
  this.timeout(90_000);
  after(removeTempDirs);

  it('writes an HTML report and a PNG strip per episode, results.jsonl and index.html, and prints the table', async () => {
    const cwd = tempDir();
    const out = path.join(cwd, 'demo-run');
    const r = await runCli(['demo', '--planner', 'oracle', '--episodes', '1', '--max-steps', '6', '--out', out], cwd, 80_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /served at ws:\/\/127\.0\.0\.1:\d+ \(the agent connects over a real WebSocket\)/);
    assert.match(r.stdout, /total time \d+(\.\d)? s/);
    const cells = tableRow(r.stdout, 'oracle');
    assert.ok(cells !== undefined, r.stdout);
    assert.equal(cells[2], '1');

    const files = readdirSync(out).sort();
    assert.deepEqual(files, ['episode-1-seed-200000.html', 'episode-1-seed-200000.png', 'index.html', 'results.jsonl']);
    const [row] = await readResults(path.join(out, 'results.jsonl'));
    assert.ok(row !== undefined);
    assert.equal(row.key, 'oracle/objectnav/seed-200000');
    assert.ok(row.steps >= 1 && row.steps <= 6, `steps ${row.steps}`);

    // The strip: one 64×64 frame per observation (reset + each step), 2-px gaps, one row (≤ 20 columns).
    const strip = decodePng(readFileSync(path.join(out, 'episode-1-seed-200000.png')));
    const n = row.steps + 1;
    assert.equal(strip.height, 64);
    assert.equal(strip.width, n * 64 + (n - 1) * 2);

    const html = readFileSync(path.join(out, 'episode-1-seed-200000.html'), 'utf8');
    assert.ok(html.startsWith('<!doctype html>'));
    assert.doesNotMatch(html, /<(script|link)\b|src="(?!data:)/, 'self-contained: no scripts, no external files');
    assert.equal((html.match(/<img class="real"/g) ?? []).length, n, 'one real frame per observation');
    const blocks = decisions(html);
    assert.equal(blocks.length, row.decisionLatenciesMs.length, 'one block per planner decision');
    let imagined = 0;
    for (const b of blocks) {
      const c = Number(b.attrs['candidates']);
      const h = Number(b.attrs['horizon']);
      const chosen = Number(b.attrs['chosen']);
      assert.equal((b.body.match(/<tr class="candidate/g) ?? []).length, c);
      assert.equal((b.body.match(/<img class="imagined"/g) ?? []).length, c * h, `decision ${b.attrs['index']}: candidates × horizon imagined frames`);
      assert.equal((b.body.match(/<tr class="candidate chosen"/g) ?? []).length, chosen >= 0 ? 1 : 0);
      if (b.attrs['reason'] === 'goal' || b.attrs['reason'] === 'explore') {
        assert.equal(c, 8, 'the demo default: 8 candidates');
        assert.equal(h, 4, 'the horizon');
        assert.ok(chosen >= 0 && chosen < c);
      }
      assert.match(b.body, /<img class="current"/);
      imagined += c * h;
    }
    assert.ok(imagined >= 32, `imagined frames in the report: ${imagined}`);
    // Every embedded image is a real PNG of the right size.
    const uris = [...html.matchAll(/src="data:image\/png;base64,([^"]+)"/g)].map((m) => m[1] ?? '');
    assert.ok(uris.length >= n + imagined);
    for (const b64 of uris) {
      const png = decodePng(Buffer.from(b64, 'base64'));
      assert.ok(png.width === 64 && png.height === 64, `${png.width}×${png.height}`);
    }
    // Metrics are in the page.
    assert.match(html, /SPL<\/td><td>\d\.\d{3}<\/td>/);
    assert.match(html, /decision latency p50 \/ p95<\/td><td>\d+\.\d ms \/ \d+\.\d ms/);
    assert.match(readFileSync(path.join(out, 'index.html'), 'utf8'), /href="episode-1-seed-200000\.html"/);

    // The same folder again is refused (in-process, the same entry code): runs never mix.
    let err = '';
    const io: CliIO = { out: () => undefined, err: (l) => (err += l), isTTY: false };
    assert.equal(await main(['demo', '--planner', 'random', '--out', out], io), 2);
    assert.match(err, /E_PATH: --out .*demo-run already holds a run/);
  });

  it('falls back to the random planner, and says so, when the model package is missing', async () => {
    const cwd = tempDir();
    const r = await runCli(['demo', '--model', 'no-such-model', '--episodes', '1', '--max-steps', '3', '--out', 'run'], cwd, 60_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /No world-model package at no-such-model: running the RANDOM planner/);
    assert.equal(tableRow(r.stdout, 'random')?.[2], '1');
    const html = readFileSync(path.join(cwd, 'run', 'episode-1-seed-200000.html'), 'utf8');
    assert.match(html, /running the RANDOM planner/, 'the report says so too');
    assert.equal(decisions(html).length, 3);
    assert.ok(existsSync(path.join(cwd, 'run', 'episode-1-seed-200000.png')));
  });
});
