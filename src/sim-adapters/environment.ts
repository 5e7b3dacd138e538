/**
 * The environment seam: a Gymnasium-like contract the agent drives (`Environment`), and the in-process
 * `Simulator` contract a server exposes over the wire protocol v4s.sim.v1.
 */
import type { Observable } from 'rxjs';
import type { Action, Frame, Observation, Pose } from '../types.js';

export const ENVIRONMENT_SPEC_VERSION = 'v1' as const;

export type TaskName = 'objectnav' | 'imagenav' | 'pointnav';
export type ImageEncoding = 'raw' | 'png' | 'jpeg';

/**
 * The frame of the poses a peer sends: `habitat` (the SDK's own: +Y up, −Z forward, right-handed) or `unity`
 * (left-handed, +Y up, +Z forward). The agent side converts `unity` poses to Habitat's on arrival.
 */
export type PoseFrame = 'habitat' | 'unity';

/** How an action moves the agent; `amount` is metres for `move`, degrees for `turn`/`look`. */
export interface ActionSpec {
  readonly kind: 'move' | 'turn' | 'look' | 'stop';
  readonly amount: number;
}

/** What a simulator (or robot) can do, sent in `hello`. */
export interface Capabilities {
  /** Action name → kind and amount. `move_forward` 0.25 m and 30° turns by default (Habitat's benchmark). */
  readonly actions: Readonly<Record<string, ActionSpec>>;
  readonly camera: { readonly width: number; readonly height: number; readonly hfov: number };
  readonly encodings: readonly ImageEncoding[];
  /** lockstep: one observation per reset/step; stream: frames pushed on the camera's clock. */
  readonly mode: 'lockstep' | 'stream';
  /** Optional ops the peer serves, e.g. `oracle`. */
  readonly ops: readonly string[];
  readonly tasks?: readonly TaskName[];
  readonly name?: string;
  /**
   * Frame of the poses (and PointNav goal positions) this peer sends; absent means `habitat`. A `unity` peer's
   * poses are converted to Habitat's by the agent side, so every `Observation.pose` is in Habitat's frame.
   */
  readonly poseFrame?: PoseFrame;
}

/** The goal of an episode, as the agent may know it (never the hidden masks). */
export interface EpisodeGoal {
  readonly task: TaskName;
  /** ObjectNav target category. */
  readonly category?: string;
  /** ImageNav goal image. */
  readonly image?: Frame;
  /** PointNav goal position, Habitat frame. */
  readonly position?: readonly [number, number, number];
}

export interface ResetOptions {
  readonly seed?: number;
  readonly task?: TaskName;
  /** An episode id the simulator knows (dataset episodes). */
  readonly episode?: string;
}

export interface StepResult {
  readonly observation: Observation;
  /** The episode reached a terminal state (stop called). */
  readonly terminated: boolean;
  /** The step limit was hit. */
  readonly truncated: boolean;
}

/** Observation returned by reset, with the episode's goal. */
export interface ResetResult {
  readonly observation: Observation;
  readonly goal?: EpisodeGoal;
}

/** Request of the optional oracle op: true futures of action sequences from the current state. */
export interface OracleRequest {
  readonly sequences: readonly (readonly string[])[];
  /** Category whose masks come back (defaults to the ObjectNav goal category). */
  readonly category?: string;
}

/** True future of one sequence: a frame per action, and the target category's mask per frame (1 = target). */
export interface OracleRollout {
  readonly frames: Frame[];
  readonly masks: Uint8Array[];
  readonly poses: Pose[];
}

/** The agent's side: a Gymnasium-like environment. */
export interface Environment {
  readonly specificationVersion: typeof ENVIRONMENT_SPEC_VERSION;
  readonly capabilities: Capabilities;
  reset(options?: ResetOptions): Promise<ResetResult>;
  step(action: Action): Promise<StepResult>;
  /** Every observation (reset, step, or pushed by a streaming peer), as it arrives. */
  readonly observations$: Observable<Observation>;
  /** Present when the peer serves the oracle op. */
  oracle?(request: OracleRequest): Promise<OracleRollout[]>;
  close(): Promise<void>;
}

/** The simulator's side: an in-process simulator that a server exposes over v4s.sim.v1. Synchronous. */
export interface Simulator {
  readonly capabilities: Capabilities;
  reset(options: ResetOptions): ResetResult;
  step(action: Action): StepResult;
  oracle?(request: OracleRequest): OracleRollout[];
}
