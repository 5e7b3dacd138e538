import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runEvaluation, seedRange, type EvaluationEpisode } from '../src/agent/episode-runner.js';
import { EPISODE_ROW_SCHEMA, ResultsWriter, completedKeys, latestRows, readResults, type EpisodeRow } from '../src/agent/results.js';
import { V4sError, isV4sError } from '../src/errors.js';
import { PLANNER_SPEC_VERSION, type Planner } from '../src/planner/planner.js';
import { RandomPlanner } from '../src/planner/random-planner.js';
import { ScriptedEnvironment, type ScriptedEnvironmentOptions } from '../src/testing/index.js';

function row(key: string, over: Partial<EpisodeRow> = {}): EpisodeRow {
  return {
    schema: EPISODE_ROW_SCHEMA,
    key,
    planner: 'random',
    status: 'ok',
    success: false,
    spl: 0,
    softSpl: 0,
    distanceToGoal: 1,
    initialDistanceToGoal: 2,
    shortestPathLength: 2,
    pathLength: 1,
    steps: 3,
    collisions: 0,
    endReason: 'stop',
    decisionLatenciesMs: [0.1],
    startedAt: '2025-01-01T00:00:00.000Z',
    durationMs: 1,
    ...over,
  };
}

/** Per-seed scripted episodes: a goal 1–3 m ahead, so some random episodes succeed. */
const envOptions: ScriptedEnvironmentOptions = {
  goal: (seed) => ({ task: 'pointnav', position: [0, 0, -1 - ((seed ?? 0) % 3)] }),
  maxSteps: 30,
};
const episodes: EvaluationEpisode[] = seedRange(0, 5).map((seed) => ({ seed, task: 'pointnav' }));
const planner = (ep: EvaluationEpisode): Planner => new RandomPlanner({ seed: ep.seed ?? 0, stopProbability: 0.1 });

/** The fields that must not depend on the run (not timings). */
function outcome(r: EpisodeRow): unknown {
  return [r.key, r.status, r.success, r.spl, r.softSpl, r.steps, r.distanceToGoal, r.pathLength];
}

describe('results (JSONL) and the episode runner', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'v4s-results-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('results file', () => {
    it('appends rows that read back identically', async () => {
      const path = join(dir, 'sub', 'r.jsonl');
      const w = await ResultsWriter.open(path);
      await Promise.all([w.append(row('a')), w.append(row('b')), w.append(row('c'))]);
      assert.deepEqual(await readResults(path), [row('a'), row('b'), row('c')]);
      assert.equal(readFileSync(path, 'utf8').split('\n').length, 4);
    });

    it('skips a truncated last line; a malformed middle line is E_RESULTS_FILE naming the line', async () => {
      const path = join(dir, 'r.jsonl');
      const full = `${JSON.stringify(row('a'))}\n${JSON.stringify(row('b'))}\n`;
      writeFileSync(path, `${full}${JSON.stringify(row('c')).slice(0, 40)}`);
      assert.deepEqual(
        (await readResults(path)).map((r) => r.key),
        ['a', 'b'],
      );
      writeFileSync(path, `${JSON.stringify(row('a'))}\n{"key":\n${JSON.stringify(row('b'))}\n`);
      await assert.rejects(readResults(path), (e: unknown) => isV4sError(e, 'E_RESULTS_FILE') && /line 2/.test(e.message));
      assert.deepEqual(await readResults(join(dir, 'missing.jsonl')), []);
    });

    it('opening cuts the truncated tail so the next row is not glued onto it', async () => {
      const path = join(dir, 'r.jsonl');
      writeFileSync(path, `${JSON.stringify(row('a'))}\n${JSON.stringify(row('b')).slice(0, 25)}`);
      const w = await ResultsWriter.open(path);
      await w.append(row('b'));
      assert.deepEqual(
        (await readResults(path)).map((r) => r.key),
        ['a', 'b'],
      );
      assert.ok(readFileSync(path, 'utf8').endsWith('\n'));
    });

    it('completedKeys and latestRows: aborted rows can be retried, the newest row per key wins', async () => {
      const path = join(dir, 'r.jsonl');
      const w = await ResultsWriter.open(path);
      await w.append(row('a'));
      await w.append(row('b', { status: 'aborted' }));
      assert.deepEqual([...(await completedKeys(path))], ['a', 'b']);
      assert.deepEqual([...(await completedKeys(path, { retryAborted: true }))], ['a']);
      await w.append(row('b', { status: 'ok', success: true }));
      const latest = latestRows(await readResults(path));
      assert.deepEqual(
        latest.map((r) => [r.key, r.status]),
        [
          ['a', 'ok'],
          ['b', 'ok'],
        ],
      );
    });
  });

  describe('runEvaluation', () => {
    it('writes one row per episode as it finishes; environment failures abort that episode only', async () => {
      const path = join(dir, 'r.jsonl');
      let created = 0;
      const result = await runEvaluation({
        environment: async () => {
          created++;
          return new ScriptedEnvironment({
            ...envOptions,
            fail: (op, s) => (op === 'step' && s.seed === 2 && s.step === 3 ? new V4sError('E_CLOSED', 'simulator went away') : undefined),
          });
        },
        planner,
        plannerName: 'random',
        episodes,
        out: path,
        onEpisode: async (_o, done) => {
          // Each row is on disk before the next episode starts.
          assert.equal((await readResults(path)).length, done);
        },
      });
      assert.deepEqual(
        result.rows.map((r) => r.status),
        ['ok', 'ok', 'aborted', 'ok', 'ok', 'ok'],
      );
      const aborted = result.rows[2];
      assert.equal(aborted?.errorCode, 'E_CLOSED');
      assert.match(aborted?.reason ?? '', /simulator went away/);
      assert.equal(aborted?.steps, 3);
      assert.equal(aborted?.decisionLatenciesMs.length, 4);
      assert.equal(created, 2, 'a fresh environment after the aborted episode');
      assert.equal(result.summaries[0]?.episodes, 5);
      assert.equal(result.summaries[0]?.aborted, 1);
      assert.deepEqual((await readResults(path)).map(outcome), result.rows.map(outcome));
      assert.ok(result.rows.some((r) => r.success) && result.rows.some((r) => r.status === 'ok' && !r.success), 'both outcomes occur');
    });

    it('a planner failure is an `error` row counted as a failure; an existing file needs resume', async () => {
      const path = join(dir, 'r.jsonl');
      const failing: Planner = { specificationVersion: PLANNER_SPEC_VERSION, name: 'broken', plan: () => Promise.reject(new Error('NaN in scores')) };
      const result = await runEvaluation({ environment: new ScriptedEnvironment(envOptions), planner: failing, episodes: episodes.slice(0, 2), out: path });
      assert.deepEqual(
        result.rows.map((r) => [r.key, r.status, r.reason]),
        [
          ['broken/pointnav/seed-0', 'error', 'NaN in scores'],
          ['broken/pointnav/seed-1', 'error', 'NaN in scores'],
        ],
      );
      assert.equal(result.summaries[0]?.episodes, 2);
      assert.equal(result.summaries[0]?.successRate, 0);
      await assert.rejects(
        runEvaluation({ environment: new ScriptedEnvironment(envOptions), planner: failing, episodes, out: path }),
        (e: unknown) => isV4sError(e, 'E_PATH') && /already holds 2 rows/.test(e.message),
      );
    });

    it('resume after an interruption (AbortSignal, truncated tail): same rows as an uninterrupted run, none duplicated', async () => {
      const reference = await runEvaluation({ environment: new ScriptedEnvironment(envOptions), planner, episodes, out: join(dir, 'ref.jsonl') });

      const path = join(dir, 'r.jsonl');
      const ac = new AbortController();
      let episodeStarts = 0;
      await assert.rejects(
        runEvaluation({
          environment: new ScriptedEnvironment({
            ...envOptions,
            // Interrupt the 4th episode in its 2nd step.
            latency: (op, s) => {
              if (op === 'reset') episodeStarts++;
              if (episodeStarts === 4 && op === 'step' && s.step === 1) ac.abort(new Error('interrupted'));
              return undefined;
            },
          }),
          planner,
          episodes,
          out: path,
          signal: ac.signal,
        }),
        /interrupted/,
      );
      assert.equal((await readResults(path)).length, 3);
      // As if killed while writing the next row.
      writeFileSync(path, `${readFileSync(path, 'utf8')}{"schema":"v4s.episode.v1","key":"random/po`);

      const resumed = await runEvaluation({ environment: new ScriptedEnvironment(envOptions), planner, episodes, out: path, resume: true });
      assert.deepEqual(resumed.skipped, ['random/pointnav/seed-0', 'random/pointnav/seed-1', 'random/pointnav/seed-2']);
      assert.equal(resumed.rows.length, 3);
      const onDisk = await readResults(path);
      assert.equal(onDisk.length, 6);
      assert.equal(new Set(onDisk.map((r) => r.key)).size, 6);
      assert.deepEqual(onDisk.map(outcome), reference.rows.map(outcome));
      assert.deepEqual(resumed.allRows.map(outcome), reference.rows.map(outcome));

      // Resuming a finished file runs nothing.
      const again = await runEvaluation({ environment: new ScriptedEnvironment(envOptions), planner, episodes, out: path, resume: true });
      assert.equal(again.rows.length, 0);
      assert.equal((await readResults(path)).length, 6);
    });

    it('resume after kill -9 of a real evaluation process: no row lost, none duplicated', async function () {
      this.timeout(20_000);
      const path = join(dir, 'killed.jsonl');
      const script = join(dir, 'eval.mts'); // .mts: ESM with top-level await outside the package
      const src = (p: string): string => fileURLToPath(new URL(`../src/${p}`, import.meta.url));
      writeFileSync(
        script,
        `import { runEvaluation } from ${JSON.stringify(src('agent/episode-runner.ts'))};
import { RandomPlanner } from ${JSON.stringify(src('planner/random-planner.ts'))};
import { ScriptedEnvironment } from ${JSON.stringify(src('testing/index.ts'))};
const episodes = Array.from({ length: 40 }, (_, seed) => ({ seed, task: 'pointnav' as const }));
await runEvaluation({
  environment: new ScriptedEnvironment({ goal: (s) => ({ task: 'pointnav', position: [0, 0, -1 - ((s ?? 0) % 3)] }), maxSteps: 30, latency: () => 2 }),
  planner: (ep) => new RandomPlanner({ seed: ep.seed ?? 0, stopProbability: 0.1 }),
  episodes, out: ${JSON.stringify(path)}, resume: true,
});
`,
      );
      const root = fileURLToPath(new URL('..', import.meta.url));
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      let running = true;
      const exited = new Promise<void>((resolve) =>
        child.on('exit', () => {
          running = false;
          resolve();
        }),
      );
      for (let i = 0; i < 400 && running; i++) {
        if (existsSync(path) && readFileSync(path, 'utf8').split('\n').length > 4) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(running, `the evaluation process ended before it was killed: ${stderr}`);
      child.kill('SIGKILL');
      await exited;
      const before = await readResults(path);
      assert.ok(before.length >= 3 && before.length < 40, `killed after ${before.length} rows`);

      const all = Array.from({ length: 40 }, (_, seed): EvaluationEpisode => ({ seed, task: 'pointnav' }));
      const resumed = await runEvaluation({ environment: new ScriptedEnvironment(envOptions), planner, episodes: all, out: path, resume: true });
      assert.equal(resumed.skipped.length, before.length);
      const after = await readResults(path);
      assert.equal(after.length, 40);
      assert.equal(new Set(after.map((r) => r.key)).size, 40);
      assert.deepEqual(after.slice(0, before.length), before, 'rows written before the kill are kept as they were');
    });

    it('retryAborted reruns aborted episodes; allRows keeps the newest row per key', async () => {
      const path = join(dir, 'r.jsonl');
      let broken = true;
      const environment = async (): Promise<ScriptedEnvironment> => {
        if (broken) throw new V4sError('E_CONNECT', 'ws://127.0.0.1:1 unreachable');
        return new ScriptedEnvironment(envOptions);
      };
      const first = await runEvaluation({ environment, planner, plannerName: 'random', episodes: episodes.slice(0, 2), out: path });
      assert.deepEqual(
        first.rows.map((r) => [r.status, r.errorCode]),
        [
          ['aborted', 'E_CONNECT'],
          ['aborted', 'E_CONNECT'],
        ],
      );
      broken = false;
      const second = await runEvaluation({ environment, planner, plannerName: 'random', episodes: episodes.slice(0, 2), out: path, resume: true, retryAborted: true });
      assert.equal(second.rows.length, 2);
      assert.deepEqual(
        second.allRows.map((r) => r.status),
        ['ok', 'ok'],
      );
      assert.equal(second.summaries[0]?.aborted, 0);
      assert.equal((await readResults(path)).length, 4);
    });
  });
});
