/**
 * Render a built-in-simulator dataset (format v4s.dataset.v1, see src/sim-adapters/builtin/dataset.ts).
 * Usage: npx tsx scripts/dataset.ts --split train|dev|eval --scenes N --out <dir> [--steps 96] [--size 64]
 */
import { parseArgs } from 'node:util';
import { writeDataset } from '../src/sim-adapters/builtin/dataset.js';
import type { SplitName } from '../src/sim-adapters/builtin/seeds.js';
import { isV4sError } from '../src/errors.js';

const USAGE = 'usage: npx tsx scripts/dataset.ts --split train|dev|eval --scenes N --out <dir> [--steps 96] [--size 64]';

function main(): void {
  const { values } = parseArgs({
    options: {
      split: { type: 'string' },
      scenes: { type: 'string' },
      out: { type: 'string' },
      steps: { type: 'string', default: '96' },
      size: { type: 'string', default: '64' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || values.split === undefined || values.scenes === undefined || values.out === undefined) {
    console.error(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  if (!['train', 'dev', 'eval'].includes(values.split)) {
    console.error(`--split must be train, dev or eval, got "${values.split}"\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const split = values.split as SplitName;
  const every = Math.max(1, Math.floor(Number(values.scenes) / 50));
  const index = writeDataset({
    split,
    scenes: Number(values.scenes),
    out: values.out,
    steps: Number(values.steps),
    size: Number(values.size),
    onProgress: (p) => {
      if (p.scene % every === 0 || p.scene === p.scenes) {
        const fps = p.frames / Math.max(1e-3, p.elapsedMs / 1000);
        console.log(`[dataset ${split}] scene ${p.scene}/${p.scenes}  frames ${p.frames}  ${fps.toFixed(0)} frames/s`);
      }
    },
  });
  console.log(`[dataset ${split}] wrote ${index.totalFrames} frames of ${index.episodes.length} episodes to ${values.out}`);
}

try {
  main();
} catch (e) {
  if (isV4sError(e)) {
    console.error(`${e.code}: ${e.message}`);
    process.exitCode = 1;
  } else {
    throw e;
  }
}
