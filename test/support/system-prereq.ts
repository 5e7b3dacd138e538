/**
 * System-tier prerequisites (DESIGN.md §5): a system test whose Debian package is missing SKIPS with the
 * install command, except under `CI=true`, where it FAILS (CI installs everything with scripts/setup-system.sh).
 */
import { spawnSync } from 'node:child_process';

/** True when running in CI (`CI=true`), where a missing prerequisite is a failure, not a skip. */
export const IN_CI = process.env.CI === 'true';

/** Skips the suite (or fails it under CI=true) when `missing` is a reason; call from a mocha `before`. */
export function requirePrerequisite(ctx: Mocha.Context, missing: string | undefined): void {
  if (missing === undefined) return;
  const message = `${missing}. Install the system-test packages with: scripts/setup-system.sh`;
  if (IN_CI) throw new Error(`CI=true: a system-test prerequisite is missing: ${message}`);
  console.warn(`      skipped: ${message}`);
  ctx.skip();
}

/** Exit code and output of a short command (never throws; status null when it could not run). */
export function probe(command: string, args: readonly string[], timeoutMs = 60_000): { status: number | null; output: string } {
  const r = spawnSync(command, [...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.error === undefined ? r.status : null, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/**
 * The first Python that can import the given modules: $V4S_PYTHON, then Debian's /usr/bin/python3 (where
 * python3-websockets and python3-numpy install), then `python3` on PATH. Returns the reason when none can.
 */
export function findPython(modules: readonly string[]): { python?: string; missing?: string } {
  const candidates = [process.env.V4S_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => typeof c === 'string' && c.length > 0);
  const tried: string[] = [];
  for (const py of candidates) {
    const r = probe(py, ['-c', `import ${modules.join(', ')}`]);
    if (r.status === 0) return { python: py };
    tried.push(`${py}: ${r.status === null ? 'not found' : (r.output.trim().split('\n').pop() ?? 'failed')}`);
  }
  return { missing: `no Python with ${modules.join(' and ')} (${tried.join('; ')}); Debian packages: ${modules.map((m) => `python3-${m}`).join(' ')}` };
}
