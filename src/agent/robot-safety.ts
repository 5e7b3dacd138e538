/**
 * Robot safety at the agent level: an episode on a robot that stops the robot the moment the agent fails.
 *
 * The robot adapter (`RosbridgeRobot`) already publishes zero velocity at the end of every discrete action,
 * on `stop`, on any adapter error, when its watchdog sees no command for `watchdogMs`, and first thing after a
 * reconnect. What it cannot know is that the *agent* failed while a motion was under way: a planner or hook
 * that throws, a planner past `planTimeoutMs`, an aborted run (Ctrl-C), a malformed frame. `runRobotEpisode`
 * closes that gap: whatever ends the episode other than success, it calls `emergencyStop()` at once (zero
 * velocity, synchronously) and then releases the latch unless someone else had set it, so the next episode can
 * run. A process that dies cannot publish anything: the robot's own command timeout must cover that
 * (docs/reliability.md §6).
 *
 * Usage:
 * ```ts
 * const robot = await RosbridgeRobot.connect({ url: 'ws://robot.local:9090', camera: { topic: '/camera/image_raw/compressed' } });
 * const trace = await runRobotEpisode(robot, planner, { maxSteps: 200, planTimeoutMs: 2000 });
 * ```
 */
import type { Planner } from '../planner/planner.js';
import type { Environment } from '../sim-adapters/environment.js';
import { runEpisode, type EpisodeTrace, type RunEpisodeOptions } from './agent.js';

/** What a robot environment offers to be stopped at once (`RosbridgeRobot` has all three). */
export interface EmergencyStoppable {
  /** Cancels any motion and publishes zero velocity now; synchronous, never throws; latches until `resume()`. */
  emergencyStop(): boolean;
  /** Releases the latch (the robot stays still until the next command). */
  resume(): void;
  /** True while latched. */
  readonly isEmergencyStopped: boolean;
}

/** Default `planTimeoutMs` of `runRobotEpisode`: a planner silent this long ends the episode. */
export const ROBOT_PLAN_TIMEOUT_MS = 10_000;

/** What `runRobotEpisode` did about a failure (the `onSafetyStop` hook gets it). */
export interface SafetyStopEvent {
  /** Why the episode ended. */
  readonly error: unknown;
  /** Whether the zero command went out (false while the link is down: the robot's own timeout acts then). */
  readonly published: boolean;
  /** Whether the latch was released afterwards (false when it was already set by someone else). */
  readonly released: boolean;
}

/** Options of `runRobotEpisode`: those of `runEpisode`, with `planTimeoutMs` defaulting to 10 s. */
export interface RobotEpisodeOptions extends RunEpisodeOptions {
  /** Called right after the emergency stop, before the returned promise rejects. */
  readonly onSafetyStop?: (event: SafetyStopEvent) => void;
}

/**
 * Stops `robot` now (zero velocity) because of `error`, then releases the latch unless it was already set
 * before (a user's emergency stop stays in force). Never throws.
 */
export function safetyStop(robot: EmergencyStoppable, error: unknown): SafetyStopEvent {
  let wasLatched = false;
  let published = false;
  let released = false;
  try {
    wasLatched = robot.isEmergencyStopped;
    published = robot.emergencyStop();
    if (!wasLatched) {
      robot.resume();
      released = true;
    }
  } catch {
    // emergencyStop never throws by contract; a robot that breaks it must not hide the original error
  }
  return { error, published, released };
}

/**
 * Runs one episode (`runEpisode`) on a robot; when it fails for any reason — an error thrown anywhere in the
 * agent, a planner past `planTimeoutMs` (default 10 s), the abort signal, an environment failure (the link
 * dropped, no frame) — the robot is stopped at once with `safetyStop`, and the promise rejects with the
 * original error. A successful episode ends with the robot stopped already (its last action ended with zero).
 */
export async function runRobotEpisode(robot: Environment & EmergencyStoppable, planner: Planner, options: RobotEpisodeOptions = {}): Promise<EpisodeTrace> {
  const { onSafetyStop, ...rest } = options;
  try {
    return await runEpisode(robot, planner, { planTimeoutMs: ROBOT_PLAN_TIMEOUT_MS, ...rest });
  } catch (e) {
    const event = safetyStop(robot, e);
    try {
      onSafetyStop?.(event);
    } catch {
      // a hook must not replace the error that stopped the robot
    }
    throw e;
  }
}
