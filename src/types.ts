/**
 * Shared types of the data flow: frames, poses, actions, observations, instructions.
 * Pose convention = Habitat's: metres, +Y up, −Z forward, quaternion [x, y, z, w].
 */

/** An RGB image, 8 bits per channel, row-major, no padding: `data.length === width * height * 3`. */
export interface Frame {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** A pose in Habitat's frame: metres, +Y up, −Z forward; rotation as quaternion [x, y, z, w]. */
export interface Pose {
  readonly position: readonly [number, number, number];
  readonly rotation: readonly [number, number, number, number];
}

/** Built-in discrete action names (Habitat's). Simulators may advertise more. */
export type DiscreteActionName = 'move_forward' | 'turn_left' | 'turn_right' | 'stop' | 'look_up' | 'look_down';

/** An action sent to an environment: a name from its capabilities, optionally a continuous amount. */
export interface Action {
  readonly name: string;
  /** Optional override of the amount (metres for moves, degrees for turns). */
  readonly amount?: number;
}

/** Per-step episode information, as habitat-lab's measures report it. */
export interface EpisodeInfo {
  readonly distanceToGoal?: number;
  readonly success?: boolean;
  /** Geodesic shortest-path length from the episode start to the goal (ℓ in SPL). */
  readonly shortestPathLength?: number;
  /** Length of the path the agent has travelled so far (p in SPL). */
  readonly pathLength?: number;
  readonly [key: string]: unknown;
}

/** One observation from an environment. */
export interface Observation {
  /** Step index within the episode (0 after reset). Becomes the frame's RoPE position. */
  readonly step: number;
  readonly rgb: Frame;
  readonly pose?: Pose;
  readonly collided?: boolean;
  readonly info: EpisodeInfo;
}

/** What the world model is conditioned on: action tokens from its vocabulary, optionally a goal category. */
export interface Instruction {
  readonly actions: readonly string[];
  readonly goalCategory?: string;
  /** Free text, for models with a text encoder (the manifest says whether it is accepted). */
  readonly text?: string;
}

/** Allocate a frame of the given size, filled with zeros. */
export function createFrame(width: number, height: number): Frame {
  return { width, height, data: new Uint8Array(width * height * 3) };
}

/** Frames chosen from the context buffer with their true step indices. */
export interface ContextSelection {
  readonly frames: Frame[];
  /** Absolute step indices, ascending, non-contiguous; the last is the newest frame. */
  readonly positions: number[];
  /** Positions relative to the newest (newest = 0, older negative): what the model receives. */
  readonly offsets: number[];
  readonly poses: (Pose | undefined)[];
}

/** Per-call options of `ContextSource.select`. */
export interface ContextSelectOptions {
  /** Largest |offset| the selection may contain, e.g. `-model.info.positionRange[0]`. */
  readonly maxOffset?: number;
}

/** Read access to the agent's rolling context memory (implemented by `ContextBuffer`). */
export interface ContextSource {
  readonly size: number;
  /** k frames, always including the newest, chosen by the buffer's sampling policy. */
  select(k: number, options?: ContextSelectOptions): ContextSelection;
}
