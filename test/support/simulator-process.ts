/**
 * Starts `simulator-process-main.ts` in a child process: a real SimulatorServer that a test can kill -9
 * mid-episode, the way a crashed simulator disappears (no WebSocket close frame, the agent sees 1006).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A simulator server in a child process. */
export interface SimulatorProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

const MAIN = fileURLToPath(new URL('./simulator-process-main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Spawns the server (port 0 picks a free one) and resolves once it listens; rejects if it exits first. */
export function startSimulatorProcess(port = 0, timeoutMs = 20_000): Promise<SimulatorProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<SimulatorProcess>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`simulator process did not listen within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        const p = Number(m[1]);
        resolve({ child, port: p, url: `ws://127.0.0.1:${p}`, exited });
      }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`simulator process exited (${String(code ?? sig)}) before listening: ${err}`));
    });
  });
}
