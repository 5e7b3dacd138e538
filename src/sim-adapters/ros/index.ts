/**
 * Robots over rosbridge v2: `RosbridgeRobot` (an Environment in stream mode, with velocity limits, a command
 * watchdog and an emergency stop), the watchdog and the injectable clock it runs on.
 */
export { DEFAULT_ROBOT_ACTIONS, RosbridgeRobot, rosBytes, rosImageToFrame } from './rosbridge-robot.js';
export type {
  CameraMessageType,
  MotionProfile,
  RobotStats,
  RosCameraOptions,
  RosCmdVelOptions,
  RosbridgeRobotOptions,
  Twist,
  Velocity,
  VelocityLimits,
} from './rosbridge-robot.js';
export { CommandWatchdog, ManualClock, systemClock } from './watchdog.js';
export type { Clock, TimerHandle, WatchdogOptions } from './watchdog.js';
