/** Shared helpers of the world-model tests: fixture packages (committed, see scripts/make-fixtures.py), frames. */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Frame } from '../src/types.js';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'models');

export function fixtureDir(name: string): string {
  return path.join(FIXTURES, name);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Set (or with `undefined`, delete) a value at a path inside parsed JSON. */
export function setPath(root: Json, keys: readonly string[], value: Json | undefined): void {
  let node: Json = root;
  for (const k of keys.slice(0, -1)) {
    if (node === null || typeof node !== 'object') throw new Error(`no object at ${k}`);
    const next: Json | undefined = Array.isArray(node) ? node[Number(k)] : node[k];
    if (next === undefined) throw new Error(`missing ${k}`);
    node = next;
  }
  const last = keys[keys.length - 1] ?? '';
  if (node === null || typeof node !== 'object' || Array.isArray(node)) throw new Error(`no object for ${last}`);
  if (value === undefined) delete node[last];
  else node[last] = value;
}

const temps: string[] = [];

/** Copy a fixture package into a temp folder, optionally editing its manifest; removed by `cleanupTemps`. */
export async function fixtureCopy(name: string, edit?: (manifest: Json) => void): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `v4s-wm-${name}-`));
  temps.push(dir);
  await cp(fixtureDir(name), dir, { recursive: true });
  if (edit) {
    const file = path.join(dir, 'manifest.json');
    const json = JSON.parse(await readFile(file, 'utf8')) as Json;
    edit(json);
    await writeFile(file, JSON.stringify(json, null, 2));
  }
  return dir;
}

export async function cleanupTemps(): Promise<void> {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** An RGB frame whose byte at (x, y, channel) is `fn(x, y, ch)`. */
export function makeFrame(width: number, height: number, fn: (x: number, y: number, ch: number) => number): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = fn(x, y, c);
  return { width, height, data };
}

/** Byte → float in pixelRange [-1, 1], as the runtime feeds it. */
export function toUnit(u: number): number {
  return -1 + (2 * u) / 255;
}

/** Assert |a − b| ≤ abs + rel·|b| elementwise, naming the first failing index. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-4, abs = 1e-4, what = 'value'): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length} ≠ ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (!(Math.abs(a - e) <= abs + rel * Math.abs(e))) throw new Error(`${what}[${i}]: ${a} ≠ expected ${e}`);
  }
}
