/**
 * Output paths (issue 8 §3): resolved against a base, kept inside it (also through symbolic links) unless an
 * absolute path was given on purpose, and of the right kind; every refusal is E_PATH naming the flag and path.
 * Real files, folders and symbolic links in a temp folder.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isV4sError } from '../src/errors.js';
import { resolveOutputPath } from '../src/agent/paths.js';

function refused(f: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(isV4sError(e, 'E_PATH'), String(e));
    for (const p of parts) assert.ok(typeof p === 'string' ? e.message.includes(p) : p.test(e.message), `${e.message} lacks ${String(p)}`);
    return true;
  });
}

describe('output paths: resolveOutputPath', () => {
  let base: string;
  let outside: string;
  beforeEach(() => {
    base = mkdtempSync(path.join(tmpdir(), 'v4s-paths-base-'));
    outside = mkdtempSync(path.join(tmpdir(), 'v4s-paths-outside-'));
    mkdirSync(path.join(base, 'runs'));
    writeFileSync(path.join(base, 'runs', 'old.jsonl'), '');
    symlinkSync(outside, path.join(base, 'escape'));
    symlinkSync(path.join(base, 'runs'), path.join(base, 'inner-link'));
  });
  afterEach(() => {
    rmSync(base, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('resolves relative paths inside the base, existing or to be created', () => {
    assert.equal(resolveOutputPath('runs/eval.jsonl', { base }), path.join(base, 'runs', 'eval.jsonl'));
    assert.equal(resolveOutputPath('./runs/../runs/old.jsonl', { base }), path.join(base, 'runs', 'old.jsonl'));
    assert.equal(resolveOutputPath('new/deep/er/r.jsonl', { base }), path.join(base, 'new', 'deep', 'er', 'r.jsonl'));
    assert.equal(resolveOutputPath('inner-link/r.jsonl', { base }), path.join(base, 'inner-link', 'r.jsonl'), 'a link that stays inside is fine');
    assert.equal(resolveOutputPath('report', { base, kind: 'dir' }), path.join(base, 'report'));
    assert.equal(resolveOutputPath('runs', { base, kind: 'dir' }), path.join(base, 'runs'));
  });

  it('refuses a relative path that leaves the base, lexically or through a symbolic link', () => {
    refused(() => resolveOutputPath('../x.jsonl', { base, what: '--out' }), '--out "../x.jsonl"', 'outside', 'give an absolute path');
    refused(() => resolveOutputPath('runs/../../x.jsonl', { base, what: '--out' }), '--out');
    refused(() => resolveOutputPath('escape/x.jsonl', { base, what: '--out' }), 'symbolic link', outside);
    refused(() => resolveOutputPath('escape/a/b/x.jsonl', { base }), 'symbolic link');
    refused(() => resolveOutputPath('escape', { base, kind: 'dir' }), 'symbolic link');
  });

  it('accepts an absolute path as an explicit choice, unless allowAbsolute is false', () => {
    const abs = path.join(outside, 'r.jsonl');
    assert.equal(resolveOutputPath(abs, { base }), abs);
    refused(() => resolveOutputPath(abs, { base, allowAbsolute: false, what: 'out' }), 'out', 'outside');
    assert.equal(resolveOutputPath(path.join(base, 'runs', 'a.jsonl'), { base, allowAbsolute: false }), path.join(base, 'runs', 'a.jsonl'));
  });

  it('refuses empty paths, control characters and over-long paths', () => {
    for (const bad of ['', '   ', 'a\0b', 'runs/x\n.jsonl', 'x\u0007']) refused(() => resolveOutputPath(bad, { base, what: '--out' }), '--out');
    refused(() => resolveOutputPath('a'.repeat(5000), { base }), 'longer than 4096');
  });

  it('refuses the wrong kind: a folder for a file, a file for a folder, a device, a file standing where a folder must be created', () => {
    refused(() => resolveOutputPath('runs', { base, what: '--out' }), 'is a directory; expected a file');
    refused(() => resolveOutputPath('.', { base }), 'not a file');
    refused(() => resolveOutputPath('runs/old.jsonl', { base, kind: 'dir', what: '--report' }), '--report', 'not a directory');
    refused(() => resolveOutputPath('runs/old.jsonl/x.jsonl', { base }), 'old.jsonl is not a directory');
    refused(() => resolveOutputPath('/dev/null', { base }), 'not a regular file');
  });
});
