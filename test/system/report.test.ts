/**
 * System tier: the demo's HTML report opened in headless Chromium (Debian's `chromium`, driven by
 * playwright-core with `executablePath`). The reports come from the real CLI (`v4s demo`, a child process):
 * with the simulator oracle as world model (no model package needed) and, when the shipped model package is
 * present, with the world-model planner and that model — what `npm start` runs.
 *
 * Checked in the browser: every image decodes (naturalWidth > 0); none is a constant colour (drawn to a canvas,
 * its pixels vary); each decision shows candidates × horizon imagined frames.
 *
 * Without chromium the test skips, naming the install command — except under CI=true, where it fails.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { REPO, runCli, tempDir, removeTempDirs } from '../cli-helpers.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** The model package of the world-model run: the shipped one (`V4S_MODEL_DIR` overrides it, e.g. for a newly trained package). */
const SHIPPED = process.env['V4S_MODEL_DIR'] ?? path.join(REPO, 'models', 'v4s-builtin-small');

interface ImageCheck {
  readonly cls: string;
  readonly alt: string;
  readonly complete: boolean;
  readonly naturalWidth: number;
  readonly naturalHeight: number;
  /** Distinct RGB values over all pixels (1 = a constant colour). */
  readonly distinct: number;
  /** Variance of the pixel values over all channels. */
  readonly variance: number;
}

interface DecisionCheck {
  readonly index: string;
  readonly reason: string;
  readonly candidates: number;
  readonly horizon: number;
  readonly rows: number;
  readonly imagined: number;
  readonly chosenRows: number;
  readonly chosen: number;
}

/** Runs in the page: decode and measure every image, count each decision's candidates and imagined frames. */
async function inspectPage(): Promise<{ images: ImageCheck[]; decisions: DecisionCheck[] }> {
  const imgs = [...document.images];
  await Promise.all(imgs.map((img) => img.decode().catch(() => undefined)));
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const images = imgs.map((img) => {
    let distinct = 0;
    let variance = 0;
    if (ctx !== null && img.naturalWidth > 0) {
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      ctx.drawImage(img, 0, 0);
      const data = ctx.getImageData(0, 0, img.naturalWidth, img.naturalHeight).data;
      const seen = new Set<number>();
      let sum = 0;
      let sum2 = 0;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        const r = data[i] ?? 0;
        const g = data[i + 1] ?? 0;
        const b = data[i + 2] ?? 0;
        seen.add((r << 16) | (g << 8) | b);
        sum += r + g + b;
        sum2 += r * r + g * g + b * b;
        n += 3;
      }
      distinct = seen.size;
      variance = n > 0 ? sum2 / n - (sum / n) ** 2 : 0;
    }
    return { cls: img.className, alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, distinct, variance };
  });
  const decisions = [...document.querySelectorAll('article.decision')].map((a) => {
    const el = a as HTMLElement;
    return {
      index: el.dataset['index'] ?? '',
      reason: el.dataset['reason'] ?? '',
      candidates: Number(el.dataset['candidates']),
      horizon: Number(el.dataset['horizon']),
      rows: el.querySelectorAll('tr.candidate').length,
      imagined: el.querySelectorAll('img.imagined').length,
      chosenRows: el.querySelectorAll('tr.candidate.chosen').length,
      chosen: Number(el.dataset['chosen']),
    };
  });
  return { images, decisions };
}

describe('system: the demo report in headless Chromium', function () {
  this.timeout(240_000);
  let browser: Browser | undefined;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      const msg = `chromium not found at ${CHROMIUM}: install it with scripts/setup-system.sh (apt-get install chromium)`;
      if (process.env['CI'] === 'true') throw new Error(msg);
      console.log(`      skipped: ${msg}`);
      this.skip();
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, headless: true });
  });

  after(async () => {
    await browser?.close();
    removeTempDirs();
  });

  /** Run the demo with tiny settings and check its one episode report in the browser. */
  async function checkDemo(args: string[], expectImagined: boolean): Promise<void> {
    assert.ok(browser !== undefined);
    const cwd = tempDir('v4s-report-');
    const out = path.join(cwd, 'run');
    const r = await runCli(['demo', '--episodes', '1', '--out', out, ...args], cwd, 200_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const pages = readdirSync(out).filter((f) => /^episode-.*\.html$/.test(f));
    assert.equal(pages.length, 1);
    const page = await browser.newPage();
    try {
      await page.goto(pathToFileURL(path.join(out, pages[0] ?? '')).href);
      const { images, decisions } = await page.evaluate(inspectPage);
      assert.ok(images.length > 0);
      for (const img of images) {
        assert.ok(img.complete && img.naturalWidth > 0 && img.naturalHeight > 0, `image "${img.alt}" did not decode`);
        assert.ok(img.distinct > 1 && img.variance > 0, `image "${img.alt}" (${img.cls}) is a constant colour`);
      }
      assert.ok(images.some((i) => i.cls === 'real'), 'real frames are shown');
      assert.ok(decisions.length > 0, 'decisions are shown');
      let imagined = 0;
      for (const d of decisions) {
        assert.equal(d.rows, d.candidates, `decision ${d.index}: candidate rows`);
        assert.equal(d.imagined, d.candidates * d.horizon, `decision ${d.index}: ${d.candidates} candidates × ${d.horizon} horizon imagined frames`);
        assert.equal(d.chosenRows, d.chosen >= 0 ? 1 : 0, `decision ${d.index}: the chosen candidate is highlighted`);
        imagined += d.imagined;
      }
      assert.equal(images.filter((i) => i.cls === 'imagined').length, imagined);
      if (expectImagined) {
        assert.ok(imagined > 0, 'imagined rollouts are shown');
        const withCandidates = decisions.filter((d) => d.candidates > 0);
        assert.ok(withCandidates.every((d) => d.horizon >= 1));
      }
    } finally {
      await page.close();
    }
  }

  it('oracle world model: images decode, none is constant, each decision shows candidates × horizon imagined frames', async () => {
    await checkDemo(['--planner', 'oracle', '--max-steps', '8'], true);
  });

  it('the shipped model (what npm start runs): the same checks', async function () {
    if (!existsSync(path.join(SHIPPED, 'manifest.json'))) {
      if (process.env['CI'] === 'true') throw new Error(`the shipped model package is missing: ${SHIPPED}`);
      console.log(`      skipped: no shipped model package at ${SHIPPED}`);
      this.skip();
    }
    await checkDemo(['--planner', 'wm', '--model', SHIPPED, '--max-steps', '4'], true);
  });
});
