/**
 * Example 06: a real robot through rosbridge: look around in place, then drive a little, with every safety net on.
 *
 * On the robot (ROS 2):  ros2 launch rosbridge_server rosbridge_websocket_launch.xml
 * Here:                  node --import tsx examples/06-ros-robot.ts [ws://robot.local:9090]
 *
 * Set the robot's own command timeout too (twist_mux, docs/integrations.md): a crashed process cannot send
 * zero velocity. Ctrl-C triggers emergencyStop(). In your project, import from 'v4s-nav'.
 */
import { isV4sError } from '../src/index.js';
import { RosbridgeRobot } from '../src/sim-adapters/ros/index.js';

const url = process.argv[2] ?? process.env.V4S_ROSBRIDGE_URL ?? 'ws://localhost:9090';

let robot: RosbridgeRobot;
try {
  robot = await RosbridgeRobot.connect({
    url,
    camera: { topic: process.env.V4S_CAMERA_TOPIC ?? '/camera/image_raw/compressed', hfov: 69 },
    odometry: { topic: '/odom' },
    cmdVel: { topic: process.env.V4S_CMD_VEL ?? '/cmd_vel' },
    limits: { maxLinear: 0.2, maxAngular: 0.6 }, // every command is clamped to these
    watchdogMs: 500, // zero velocity when no command arrives for 0.5 s
  });
} catch (e) {
  if (!isV4sError(e) || !['E_CONNECT', 'E_TIMEOUT'].includes(e.code)) throw e;
  console.error(`Cannot use the robot at ${url}: ${e.message}`);
  process.exit(1);
}

// Ctrl-C: stop the robot first, then leave.
process.once('SIGINT', () => {
  robot.emergencyStop();
  void robot.close().then(() => process.exit(130));
});
robot.errors$.subscribe((e) => console.error(`robot: ${e.code}: ${e.message}`));

try {
  const { observation } = await robot.reset();
  console.log(`camera ${observation.rgb.width}×${observation.rgb.height}; pose ${JSON.stringify(observation.pose?.position ?? null)}`);
  for (let i = 0; i < 12; i++) {
    // Each step: the turn's velocity profile (30° at 0.5 rad/s, clamped), zero, then a fresh frame.
    const { observation: o } = await robot.step({ name: 'turn_left' });
    console.log(`step ${o.step}: yaw-quaternion ${JSON.stringify(o.pose?.rotation.map((v) => Number(v.toFixed(3))) ?? null)}`);
  }
  await robot.step({ name: 'move_forward' });
  await robot.step({ name: 'stop' }); // zero velocity, episode over
} finally {
  await robot.close(); // zero velocity, unsubscribe, disconnect
}
