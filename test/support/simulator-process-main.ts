/**
 * A real SimulatorServer (built-in simulator) in its own process, for fault tests that kill it with SIGKILL.
 * Prints `LISTENING <port>` on stdout once it listens. Usage: `node --import tsx simulator-process-main.ts [port]`.
 * Started by `startSimulatorProcess` (simulator-process.ts); not a test itself.
 */
import { BuiltinSimulator } from '../../src/sim-adapters/builtin/simulator.js';
import { SimulatorServer } from '../../src/sim-adapters/ws-server.js';

const port = Number(process.argv[2] ?? '0');
const server = await SimulatorServer.start(() => new BuiltinSimulator({ width: 32, height: 32 }), { port });
process.stdout.write(`LISTENING ${server.port}\n`);
