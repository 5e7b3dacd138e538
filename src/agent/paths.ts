/**
 * Output paths given by a user (CLI flags, evaluation options) are resolved and checked before anything is
 * written: a relative path must stay inside its base folder, also through symbolic links; an absolute path is
 * accepted as an explicit choice unless `allowAbsolute: false`; the target must be of the right kind. Paths
 * never come from the wire (docs/security.md).
 *
 * Usage:
 * ```ts
 * const out = resolveOutputPath(flags.out ?? 'runs/eval.jsonl', { what: '--out' });   // E_PATH naming --out
 * const dir = resolveOutputPath('runs/report', { kind: 'dir', base: projectRoot });
 * ```
 */
import { realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { V4sError } from '../errors.js';

/** Options of `resolveOutputPath`. */
export interface OutputPathOptions {
  /** The folder relative paths resolve against and must stay inside. Default `process.cwd()`. */
  readonly base?: string;
  /** What will be written there: a `file` (default) or a `dir`. */
  readonly kind?: 'file' | 'dir';
  /** Names the value in messages, e.g. `--out`. Default `output path`. */
  readonly what?: string;
  /** Accept an absolute path outside `base` (the user named it on purpose). Default true. */
  readonly allowAbsolute?: boolean;
}

/** Longest path accepted, in UTF-16 code units (PATH_MAX on Linux is 4096 bytes). */
export const MAX_PATH_LENGTH = 4096;

function statOrUndefined(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/** The deepest ancestor of `p` (or `p` itself) that exists. */
function existingAncestor(p: string): string {
  let cur = p;
  for (;;) {
    if (statOrUndefined(cur) !== undefined) return cur;
    const up = path.dirname(cur);
    if (up === cur) return cur;
    cur = up;
  }
}

/**
 * Resolves `p` against `options.base` and checks it; returns the absolute path. Throws `E_PATH` naming
 * `options.what` and the path when it is empty or holds control characters, when a relative path leaves the
 * base (`..`, or a symbolic link pointing outside), when an absolute path is refused, when a file is wanted
 * and a directory (or a device, a FIFO) is there, when a directory is wanted and something else is there,
 * or when a file stands where a parent folder would have to be created.
 */
export function resolveOutputPath(p: string, options: OutputPathOptions = {}): string {
  const what = options.what ?? 'output path';
  const kind = options.kind ?? 'file';
  const fail = (message: string, resolved?: string): never => {
    throw new V4sError('E_PATH', `${what} ${JSON.stringify(p)}: ${message}`, { what, path: resolved ?? p });
  };
  if (typeof p !== 'string' || p.trim() === '') fail('is empty');
  if (p.length > MAX_PATH_LENGTH) fail(`is longer than ${MAX_PATH_LENGTH} characters`);
  if (/[\u0000-\u001f\u007f]/.test(p)) fail('holds a control character (NUL, newline, …)');
  const base = path.resolve(options.base ?? process.cwd());
  const resolved = path.resolve(base, p);
  const confined = !path.isAbsolute(p) || options.allowAbsolute === false;

  if (confined) {
    if (!inside(base, resolved)) {
      fail(
        `resolves to ${resolved}, outside ${base}${path.isAbsolute(p) ? '' : '; give an absolute path to write there on purpose'}`,
        resolved,
      );
    }
    // Symbolic links: what exists of the path must really be inside the base too.
    const ancestor = existingAncestor(resolved);
    let realBase = base;
    let realAncestor = ancestor;
    try {
      realBase = realpathSync(base);
      realAncestor = realpathSync(ancestor);
    } catch {
      // base missing or unreadable: the lexical check above is all there is to check
    }
    if (!inside(realBase, realAncestor)) {
      fail(`${ancestor} is a symbolic link (or under one) to ${realAncestor}, outside ${realBase}`, resolved);
    }
  }
  if (kind === 'file' && resolved === base) fail(`names the folder ${base}, not a file`, resolved);

  const st = statOrUndefined(resolved);
  if (st !== undefined) {
    if (kind === 'file' && st.isDirectory()) fail(`${resolved} is a directory; expected a file`, resolved);
    if (kind === 'file' && !st.isFile()) fail(`${resolved} is not a regular file (a device, FIFO or socket)`, resolved);
    if (kind === 'dir' && !st.isDirectory()) fail(`${resolved} exists and is not a directory`, resolved);
  } else {
    const ancestor = existingAncestor(path.dirname(resolved));
    if (!(statOrUndefined(ancestor)?.isDirectory() ?? false)) {
      fail(`${ancestor} is not a directory, so ${path.dirname(resolved)} cannot be created`, resolved);
    }
  }
  return resolved;
}
