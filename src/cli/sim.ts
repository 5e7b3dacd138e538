/**
 * `v4s sim`: the built-in simulator alone, served over v4s.sim.v1 until SIGINT/SIGTERM. Every connection gets
 * its own simulator (its own episodes). Binds 127.0.0.1 unless `--host` says otherwise, which then needs a
 * token (`--token` or the `V4S_TOKEN` environment variable).
 *
 * Usage: `v4s sim --port 8765 --oracle --encoding png`
 */
import { Option, type Command } from 'commander';
import { BuiltinSimulator } from '../sim-adapters/builtin/simulator.js';
import type { ImageEncoding } from '../sim-adapters/environment.js';
import { IMAGE_ENCODINGS } from '../sim-adapters/protocol/types.js';
import { DEFAULT_SIMULATOR_PORT, SimulatorServer } from '../sim-adapters/ws-server.js';
import { EXIT, intArg, processIO, type CliIO } from './common.js';

/** Parsed options of `v4s sim`. */
export interface SimOptions {
  readonly port: number;
  readonly host: string;
  readonly token?: string;
  readonly oracle?: boolean;
  readonly encoding: ImageEncoding;
  readonly size: number;
}

/**
 * Start the server and keep it until `stopped` resolves (default: SIGINT/SIGTERM). Resolves with the exit code.
 * Prints `listening on ws://…` first, which scripts may wait for.
 */
export async function runSimCommand(o: SimOptions, io: CliIO = processIO, stopped?: Promise<unknown>): Promise<number> {
  const oracle = o.oracle === true;
  const token = o.token ?? process.env['V4S_TOKEN'];
  const server = await SimulatorServer.start(() => new BuiltinSimulator({ width: o.size, height: o.size, oracle }), {
    port: o.port,
    host: o.host,
    oracle,
    encoding: o.encoding,
    ...(token !== undefined && token !== '' ? { token } : {}),
  });
  io.out(`v4s sim: built-in simulator listening on ${server.url}`);
  io.out(`camera ${o.size}×${o.size} · encoding ${o.encoding} · oracle ${oracle ? 'on' : 'off'} · token ${token !== undefined && token !== '' ? 'required' : 'none (loopback only)'}`);
  io.out('Ctrl-C to stop.');
  const signalled =
    stopped ??
    new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
  const why = await signalled;
  io.out(`${typeof why === 'string' ? `${why}: ` : ''}closing (${server.connectionCount} connection(s) open)`);
  await server.close();
  return EXIT.ok;
}

/** Register `v4s sim`. */
export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('sim')
    .description('serve the built-in simulator over WebSocket (v4s.sim.v1) until Ctrl-C')
    .option('--port <port>', 'TCP port (0: a free one)', intArg(0, 65535), DEFAULT_SIMULATOR_PORT)
    .option('--host <host>', 'interface to bind; beyond loopback a token is required', '127.0.0.1')
    .option('--token <token>', 'shared token agents must send (default: $V4S_TOKEN)')
    .option('--oracle', 'serve the oracle op (true futures, for the oracle world model)')
    .addOption(new Option('--encoding <enc>', 'frame encoding sent unless the agent asks for another').choices(IMAGE_ENCODINGS).default('raw'))
    .option('--size <px>', 'square camera size in pixels', intArg(8, 1024), 64)
    .action(async (opts: SimOptions) => {
      process.exitCode = await runSimCommand(opts, io);
    });
}
