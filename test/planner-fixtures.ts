/**
 * Hand-made frames, grounding maps and small in-test WorldModel stand-ins for the planner tests.
 *
 * The world-model stand-ins are test doubles on purpose: these tests pin the planner's decisions to scripted
 * imagined futures (which candidate "shows" the goal), which a trained model cannot be made to do. The real
 * ONNX runtime and the simulator oracle are tested in the worldmodel tests.
 */
import type { Capabilities } from '../src/sim-adapters/environment.js';
import type { Frame, Instruction, Pose } from '../src/types.js';
import type { GroundingMap, ImagineRequest, Rollout, WorldModel, WorldModelInfo } from '../src/worldmodel/world-model.js';

/** Habitat's discrete vocabulary with its step sizes (as the shipped model's manifest). */
export const HABITAT_ACTIONS = {
  move_forward: { kind: 'move', amount: 0.25 },
  turn_left: { kind: 'turn', amount: 30 },
  turn_right: { kind: 'turn', amount: 30 },
} as const satisfies WorldModelInfo['actions'];

export const CAPABILITIES: Capabilities = {
  actions: { ...HABITAT_ACTIONS, stop: { kind: 'stop', amount: 0 } },
  camera: { width: 64, height: 64, hfov: 90 },
  encodings: ['raw'],
  mode: 'lockstep',
  ops: [],
};

/** The shipped model's info, at a given resolution (tests use small frames to stay fast). */
export function modelInfo(size = 16, overrides: Partial<WorldModelInfo> = {}): WorldModelInfo {
  return {
    name: 'stand-in',
    resolution: { width: size, height: size },
    actions: HABITAT_ACTIONS,
    maxContext: 6,
    horizon: 4,
    positionRange: [-48, 4],
    goalCategories: ['chair', 'sofa', 'plant', 'bed', 'toilet', 'tv'],
    grounding: true,
    defaultSampler: { kind: 'euler', steps: 4 },
    defaultGuidance: { kind: 'joint', scale: 1 },
    ...overrides,
  };
}

export function solid(rgb: readonly [number, number, number], w = 16, h = 16): Frame {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set(rgb, i * 3);
  return { width: w, height: h, data };
}

/** A deterministic textured frame (a seeded pattern), distinct per seed. */
export function pattern(seed: number, w = 16, h = 16): Frame {
  const data = new Uint8Array(w * h * 3);
  let a = (seed * 2654435761) >>> 0;
  for (let i = 0; i < data.length; i++) {
    a = (a * 1664525 + 1013904223) >>> 0;
    data[i] = a >>> 24;
  }
  return { width: w, height: h, data };
}

/** Paint a rectangle [x0, x1) × [y0, y1) of `frame` (in place) and return it. */
export function paint(frame: Frame, x0: number, x1: number, y0: number, y1: number, rgb: readonly [number, number, number]): Frame {
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) frame.data.set(rgb, (y * frame.width + x) * 3);
  return frame;
}

/** An 8×8 grounding map with probability `p` in columns [c0, c1) of rows [r0, r1), 0 elsewhere. */
export function blobMap(c0: number, c1: number, r0: number, r1: number, p = 1, size = 8): GroundingMap {
  const data = new Float32Array(size * size);
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) data[r * size + c] = p;
  return { width: size, height: size, data };
}

export const EMPTY_MAP: GroundingMap = { width: 8, height: 8, data: new Float32Array(64) };

export function yawPose(x: number, z: number, yawDeg: number): Pose {
  const half = (yawDeg * Math.PI) / 360;
  return { position: [x, 0, z], rotation: [0, Math.sin(half), 0, Math.cos(half)] };
}

/** Short code of an action sequence: F, L, R. */
export function code(actions: readonly string[]): string {
  return actions.map((a) => (a === 'move_forward' ? 'F' : a === 'turn_left' ? 'L' : a === 'turn_right' ? 'R' : '?')).join('');
}

/** What the scripted stand-in returns for one candidate. */
export interface ScriptedFuture {
  readonly frames?: Frame[];
  readonly grounding?: GroundingMap[];
}

/**
 * A WorldModel stand-in whose imagined future per candidate comes from a script (see the module comment).
 * Records every request. Frames default to distinct patterns per (candidate, step) so views "change".
 */
export class ScriptedWorldModel implements WorldModel {
  readonly specificationVersion = 'v1' as const;
  readonly info: WorldModelInfo;
  readonly requests: ImagineRequest[] = [];
  currentGrounding: GroundingMap | undefined;
  constructor(
    readonly script: (instruction: Instruction, index: number) => ScriptedFuture,
    info: WorldModelInfo = modelInfo(),
  ) {
    this.info = info;
  }
  imagine(request: ImagineRequest): Promise<Rollout[]> {
    this.requests.push(request);
    const { width, height } = this.info.resolution;
    const horizon = request.horizon ?? this.info.horizon;
    return Promise.resolve(
      request.candidates.map((instruction, i) => {
        const s = this.script(instruction, i);
        const frames = s.frames ?? Array.from({ length: horizon }, (_, t) => pattern(1000 * (i + 1) + t, width, height));
        const grounding = s.grounding ?? (instruction.goalCategory !== undefined ? frames.map(() => EMPTY_MAP) : undefined);
        return {
          instruction,
          frames,
          ...(grounding !== undefined ? { grounding } : {}),
          ...(this.currentGrounding !== undefined ? { currentGrounding: this.currentGrounding } : {}),
          timings: { encodeMs: 0, denoiseMs: 0, decodeMs: 0, totalMs: 0 },
        };
      }),
    );
  }
  dispose(): Promise<void> {
    return Promise.resolve();
  }
}
