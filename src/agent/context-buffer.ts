/**
 * The agent's rolling, non-contiguous context memory. Every kept frame keeps the step index at which it was
 * observed; `select(k)` returns k frames (always the newest) with those true indices and their offsets
 * relative to the newest, which become the world model's RoPE positions. Never renumbered 0..k-1.
 *
 * Memory is bounded by `capacity` frames: a dense recent window plus older frames thinned by the policy's
 * eviction rule (so the policy always finds what it needs). Frames are copied (optionally downsampled) on
 * push, so the buffer never retains a socket's message buffer.
 *
 * Usage:
 * ```ts
 * const buffer = new ContextBuffer({ capacity: 64, policy: 'recent-exponential', storedSize: { width: 64, height: 64 } });
 * buffer.push(observation);
 * const { frames, positions, offsets } = buffer.select(8); // offsets e.g. [-32, -16, -8, -4, -2, -1, 0]
 * ```
 */
import { V4sError } from '../errors.js';
import type { ContextSelectOptions, ContextSelection, ContextSource, Frame, Observation, Pose } from '../types.js';
import { assertFrame, resizeFrame, type ResizeMode } from './frames.js';

/** A frame kept by the buffer. */
export interface ContextEntry {
  /** Step index at which the frame was observed (its absolute position). */
  readonly step: number;
  readonly frame: Frame;
  readonly pose?: Pose;
  /** 4×4 RGB thumbnail in [0, 1], present when the policy compares appearance. */
  readonly signature?: Float32Array;
  /** Distance to the nearest keyframe kept when this one was pushed (novelty policy); Infinity for the first. */
  readonly novelty: number;
}

/** What a policy sees: entries ascending by step (the last is the newest) and the buffer's distance. */
export interface PolicyView {
  readonly entries: readonly ContextEntry[];
  /** Pose distance when both entries have poses, else appearance distance; in "novelty units" (see options). */
  distance(a: ContextEntry, b: ContextEntry): number;
}

/**
 * A sampling policy: which frames `select(k)` returns, and which frame eviction drops so that memory stays
 * bounded while keeping what `select` needs.
 */
export interface ContextPolicy {
  readonly name: string;
  /** The buffer computes `signature` for each entry. */
  readonly usesAppearance?: boolean;
  /**
   * When set, the buffer computes each entry's `novelty` as its distance to the nearest kept keyframe, a
   * keyframe being an entry whose own novelty is at least this threshold.
   */
  readonly keyframeThreshold?: number;
  /**
   * Indices into `view.entries` (all eligible: within maxOffset) to return, at most `k`. The buffer adds the
   * newest if missing, removes duplicates, sorts ascending and tops up to min(k, n) by farthest-step fill.
   */
  select(view: PolicyView, k: number): number[];
  /** Index in `[0, candidates)` of the entry to drop; the entries from `candidates` on are the protected recent window. */
  evict(view: PolicyView, candidates: number): number;
}

/** Names of the built-in policies. */
export type ContextPolicyName = 'recent-exponential' | 'novelty' | 'uniform';

/** The built-in policy names, for CLIs and validation. */
export const CONTEXT_POLICY_NAMES: readonly ContextPolicyName[] = ['recent-exponential', 'novelty', 'uniform'];

export interface ContextBufferOptions {
  /** Most frames kept (recent window + older frames). Default 64. */
  readonly capacity?: number;
  /** The newest frames, never evicted (besides maxOffset). Default min(8, capacity). */
  readonly recentWindow?: number;
  /** A built-in policy name or a custom policy. Default `recent-exponential`. */
  readonly policy?: ContextPolicyName | ContextPolicy;
  /** Downsample frames to this size on push (e.g. the model's resolution). Default: keep the camera size. */
  readonly storedSize?: { readonly width: number; readonly height: number };
  /** How `storedSize` is reached. Default `crop` (centre-crop to the aspect, then resize). */
  readonly storedMode?: ResizeMode;
  /**
   * Largest |offset| a selection may contain (the model's trained position range). Frames older than
   * `newest.step - maxOffset` are dropped at once. Default: unbounded.
   */
  readonly maxOffset?: number;
  /** Base of the exponential spacing of `recent-exponential` (offsets 0, −1, −b, −b², …). Default 2. */
  readonly exponentialBase?: number;
  /** Novelty units per metre of position difference. Default 2 (0.5 m = 1 unit). */
  readonly noveltyPerMetre?: number;
  /** Novelty units per degree of rotation difference. Default 1/30 (30° = 1 unit). */
  readonly noveltyPerDegree?: number;
  /** Novelty units per unit of mean absolute thumbnail difference (in [0,1]). Default 10 (0.1 = 1 unit). */
  readonly noveltyPerAppearance?: number;
  /** A frame whose distance to every kept frame is at least this is a keyframe. Default 1. */
  readonly keyframeThreshold?: number;
}


const SIGNATURE_SIZE = 4;

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new V4sError('E_CONFIG', `ContextBuffer: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

/** Rotation angle between two unit quaternions, degrees. */
function rotationDeg(a: Pose['rotation'], b: Pose['rotation']): number {
  const dot = Math.abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3]);
  return (2 * Math.acos(Math.min(1, dot)) * 180) / Math.PI;
}

/** A 4×4 RGB thumbnail in [0, 1]: coarse layout and colour (grey alone would confuse red, green and blue walls). */
function appearanceSignature(frame: Frame): Float32Array {
  const small = resizeFrame(frame, SIGNATURE_SIZE, SIGNATURE_SIZE, 'stretch', 'area');
  const sig = new Float32Array(small.data.length);
  for (let i = 0; i < sig.length; i++) sig[i] = (small.data[i] ?? 0) / 255;
  return sig;
}

/** Nearest unused entry to `target` (by step); ties go to the older entry. -1 when all are used. */
function nearestUnused(entries: readonly ContextEntry[], target: number, used: ReadonlySet<number>): number {
  let best = -1;
  let bestD = Infinity;
  for (let i = 0; i < entries.length; i++) {
    if (used.has(i)) continue;
    const d = Math.abs((entries[i]?.step ?? 0) - target);
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return best;
}

/** Snap target steps (in the given order) to distinct nearest entries. */
function snapTargets(entries: readonly ContextEntry[], targets: readonly number[], k: number): number[] {
  const used = new Set<number>();
  for (const t of targets) {
    if (used.size >= k) break;
    const i = nearestUnused(entries, t, used);
    if (i < 0) break;
    used.add(i);
  }
  return [...used];
}

/**
 * `recent-exponential`: offsets 0, −1, −b, −b², … (b = base), each snapped to the nearest kept frame.
 * Eviction drops the older frame whose removal leaves the smallest gap relative to its age, which keeps the
 * kept frames geometrically spaced.
 */
export function recentExponentialPolicy(base = 2): ContextPolicy {
  if (!(base > 1)) throw new V4sError('E_CONFIG', `recent-exponential: base must be > 1, got ${String(base)}`);
  return {
    name: 'recent-exponential',
    select(view, k) {
      const { entries } = view;
      const newest = entries[entries.length - 1]?.step ?? 0;
      const oldest = entries[0]?.step ?? 0;
      const targets = [newest];
      for (let off = 1; targets.length < k && newest - off >= oldest; off = Math.max(off + 1, Math.round(off * base))) {
        targets.push(newest - off);
      }
      return snapTargets(entries, targets, k);
    },
    evict(view, candidates) {
      const { entries } = view;
      const newest = entries[entries.length - 1]?.step ?? 0;
      let best = 0;
      let bestScore = Infinity;
      for (let i = 1; i < candidates; i++) {
        const prev = entries[i - 1]?.step ?? 0;
        const next = entries[i + 1]?.step ?? newest;
        const age = Math.max(1, newest - (entries[i]?.step ?? 0));
        const score = (next - prev) / age;
        if (score < bestScore) {
          bestScore = score;
          best = i;
        }
      }
      return best;
    },
  };
}

/**
 * `uniform`: k frames evenly spaced in step over the (eligible) history, snapped to kept frames. Eviction
 * merges the smallest gap, which keeps the older frames evenly spaced; the oldest is kept while others remain.
 */
export function uniformPolicy(): ContextPolicy {
  return {
    name: 'uniform',
    select(view, k) {
      const { entries } = view;
      const newest = entries[entries.length - 1]?.step ?? 0;
      const oldest = entries[0]?.step ?? 0;
      const targets = [newest];
      for (let j = 1; j < k; j++) targets.push(newest - ((newest - oldest) * j) / (k - 1));
      return snapTargets(entries, targets, k);
    },
    evict(view, candidates) {
      const { entries } = view;
      const newest = entries[entries.length - 1]?.step ?? 0;
      let best = 0;
      let bestGap = Infinity;
      for (let i = 1; i < candidates; i++) {
        const gap = (entries[i + 1]?.step ?? newest) - (entries[i - 1]?.step ?? 0);
        if (gap < bestGap) {
          bestGap = gap;
          best = i;
        }
      }
      return best;
    },
  };
}

/**
 * `novelty`: keyframes by pose novelty (position and rotation change) or, for frames without a pose,
 * appearance novelty (4×4 RGB thumbnail difference). `select` takes the newest, then greedily the frame
 * farthest from those already chosen (most different views first). Eviction drops non-keyframes first
 * (oldest first), then the keyframe most similar to a temporal neighbour.
 */
export function noveltyPolicy(keyframeThreshold = 1): ContextPolicy {
  return {
    name: 'novelty',
    usesAppearance: true,
    keyframeThreshold,
    select(view, k) {
      const { entries } = view;
      const n = entries.length;
      const chosen = [n - 1];
      const minD = new Float64Array(n).fill(Infinity);
      let last = n - 1;
      while (chosen.length < Math.min(k, n)) {
        const le = entries[last];
        let best = -1;
        let bestD = -1;
        for (let i = n - 1; i >= 0; i--) {
          const e = entries[i];
          if (e === undefined || le === undefined) continue;
          const d = Math.min(minD[i] ?? Infinity, view.distance(e, le));
          minD[i] = d;
          if (chosen.includes(i)) continue;
          // Strictly greater: among equals, the more recent wins (iterating newest → oldest).
          if (d > bestD) {
            bestD = d;
            best = i;
          }
        }
        if (best < 0) break;
        chosen.push(best);
        last = best;
      }
      return chosen;
    },
    evict(view, candidates) {
      const { entries } = view;
      for (let i = 0; i < candidates; i++) {
        if ((entries[i]?.novelty ?? 0) < keyframeThreshold) return i;
      }
      let best = 0;
      let bestD = Infinity;
      for (let i = 0; i < candidates; i++) {
        const e = entries[i];
        if (e === undefined) continue;
        const prev = entries[i - 1];
        const next = entries[i + 1];
        const d = Math.min(
          prev === undefined ? Infinity : view.distance(e, prev),
          next === undefined ? Infinity : view.distance(e, next),
        );
        if (d < bestD) {
          bestD = d;
          best = i;
        }
      }
      return best;
    },
  };
}

/** Build a built-in policy by name. */
export function createContextPolicy(name: ContextPolicyName, options: ContextBufferOptions = {}): ContextPolicy {
  switch (name) {
    case 'recent-exponential':
      return recentExponentialPolicy(options.exponentialBase ?? 2);
    case 'uniform':
      return uniformPolicy();
    case 'novelty':
      return noveltyPolicy(options.keyframeThreshold ?? 1);
    default: {
      const unknown: never = name;
      throw new V4sError('E_CONFIG', `unknown context policy "${String(unknown)}"; expected one of ${CONTEXT_POLICY_NAMES.join(', ')}`);
    }
  }
}

interface MutableEntry {
  step: number;
  frame: Frame;
  pose?: Pose;
  signature?: Float32Array;
  novelty: number;
}

/**
 * Rolling context memory with bounded capacity; implements `ContextSource`.
 *
 * Steps must not decrease between pushes (call `clear()` at an episode start); a push with the newest's step
 * replaces the newest frame (latest wins), so the same observation delivered twice is harmless.
 */
export class ContextBuffer implements ContextSource {
  readonly capacity: number;
  readonly recentWindow: number;
  readonly policy: ContextPolicy;
  readonly maxOffset: number;
  readonly #options: ContextBufferOptions;
  readonly #entries: MutableEntry[] = [];
  readonly #view: PolicyView;

  constructor(options: ContextBufferOptions = {}) {
    this.#options = options;
    this.capacity = positiveInt('capacity', options.capacity ?? 64);
    this.recentWindow = positiveInt('recentWindow', options.recentWindow ?? Math.min(8, this.capacity));
    if (this.recentWindow > this.capacity) {
      throw new V4sError('E_CONFIG', `ContextBuffer: recentWindow ${this.recentWindow} exceeds capacity ${this.capacity}`);
    }
    const maxOffset = options.maxOffset ?? Infinity;
    if (!(maxOffset >= 0)) throw new V4sError('E_CONFIG', `ContextBuffer: maxOffset must be ≥ 0, got ${String(maxOffset)}`);
    this.maxOffset = maxOffset;
    if (options.storedSize !== undefined) {
      positiveInt('storedSize.width', options.storedSize.width);
      positiveInt('storedSize.height', options.storedSize.height);
    }
    const p = options.policy ?? 'recent-exponential';
    this.policy = typeof p === 'string' ? createContextPolicy(p, options) : p;
    const perMetre = options.noveltyPerMetre ?? 2;
    const perDegree = options.noveltyPerDegree ?? 1 / 30;
    const perAppearance = options.noveltyPerAppearance ?? 10;
    this.#view = {
      entries: this.#entries,
      distance(a, b) {
        if (a.pose !== undefined && b.pose !== undefined) {
          const dx = a.pose.position[0] - b.pose.position[0];
          const dy = a.pose.position[1] - b.pose.position[1];
          const dz = a.pose.position[2] - b.pose.position[2];
          return Math.hypot(dx, dy, dz) * perMetre + rotationDeg(a.pose.rotation, b.pose.rotation) * perDegree;
        }
        if (a.signature !== undefined && b.signature !== undefined) {
          let s = 0;
          for (let i = 0; i < a.signature.length; i++) s += Math.abs((a.signature[i] ?? 0) - (b.signature[i] ?? 0));
          return (s / a.signature.length) * perAppearance;
        }
        return 0;
      },
    };
  }

  /** Number of frames kept. */
  get size(): number {
    return this.#entries.length;
  }

  /** The newest kept entry, if any. */
  get newest(): ContextEntry | undefined {
    return this.#entries[this.#entries.length - 1];
  }

  /** The kept entries, ascending by step (a copy of the list; the entries themselves are shared). */
  entries(): ContextEntry[] {
    return [...this.#entries];
  }

  /** Forget everything (start of an episode). */
  clear(): void {
    this.#entries.length = 0;
  }

  /**
   * Add an observation's frame (copied, and downsampled when `storedSize` is set).
   * Throws `E_FRAME_SIZE` for a malformed frame and `E_CONTEXT_ORDER` for a step older than the newest.
   */
  push(observation: Pick<Observation, 'step' | 'rgb' | 'pose'>): void {
    const { step } = observation;
    if (!Number.isInteger(step) || step < 0) {
      throw new V4sError('E_CONTEXT_ORDER', `ContextBuffer.push: step must be a non-negative integer, got ${String(step)}`);
    }
    assertFrame(observation.rgb, `observation ${step} rgb`);
    const newest = this.#entries[this.#entries.length - 1];
    if (newest !== undefined && step < newest.step) {
      throw new V4sError(
        'E_CONTEXT_ORDER',
        `ContextBuffer.push: step ${step} is older than the newest kept step ${newest.step}; call clear() at an episode start`,
      );
    }
    const size = this.#options.storedSize;
    const frame =
      size === undefined
        ? { width: observation.rgb.width, height: observation.rgb.height, data: new Uint8Array(observation.rgb.data) }
        : resizeFrame(observation.rgb, size.width, size.height, this.#options.storedMode ?? 'crop');
    const entry: MutableEntry = { step, frame, novelty: Infinity };
    if (observation.pose !== undefined) {
      entry.pose = {
        position: [...observation.pose.position],
        rotation: [...observation.pose.rotation],
      };
    }
    if (this.policy.usesAppearance === true) entry.signature = appearanceSignature(frame);
    if (newest !== undefined && step === newest.step) this.#entries.pop();
    const threshold = this.policy.keyframeThreshold;
    if (threshold !== undefined) {
      let nov = Infinity;
      for (const e of this.#entries) if (e.novelty >= threshold) nov = Math.min(nov, this.#view.distance(entry, e));
      entry.novelty = nov;
    }
    this.#entries.push(entry);
    this.#evict();
  }

  #evict(): void {
    const entries = this.#entries;
    const newestStep = entries[entries.length - 1]?.step ?? 0;
    // Frames beyond maxOffset can never be selected: drop them first.
    let stale = 0;
    while (stale < entries.length - 1 && newestStep - (entries[stale]?.step ?? 0) > this.maxOffset) stale++;
    if (stale > 0) entries.splice(0, stale);
    while (entries.length > this.capacity) {
      const candidates = entries.length - this.recentWindow;
      const i = this.policy.evict(this.#view, candidates);
      if (!Number.isInteger(i) || i < 0 || i >= candidates) {
        throw new V4sError('E_CONFIG', `context policy "${this.policy.name}" chose eviction index ${String(i)} outside [0, ${candidates})`);
      }
      entries.splice(i, 1);
    }
  }

  /**
   * k frames (fewer when fewer are eligible), always including the newest, ascending by step, with their
   * true step indices and offsets relative to the newest (newest = 0, older negative, |offset| ≤ maxOffset).
   * Throws `E_CONTEXT_EMPTY` before the first push.
   */
  select(k: number, options: ContextSelectOptions = {}): ContextSelection {
    if (!Number.isInteger(k) || k < 1) throw new V4sError('E_CONFIG', `ContextBuffer.select: k must be a positive integer, got ${String(k)}`);
    const all = this.#entries;
    const newest = all[all.length - 1];
    if (newest === undefined) throw new V4sError('E_CONTEXT_EMPTY', 'ContextBuffer.select: no frame has been pushed yet');
    const maxOffset = Math.min(this.maxOffset, options.maxOffset ?? Infinity);
    let first = 0;
    while (first < all.length - 1 && newest.step - (all[first]?.step ?? 0) > maxOffset) first++;
    const eligible = first === 0 ? all : all.slice(first);
    const view: PolicyView = first === 0 ? this.#view : { entries: eligible, distance: this.#view.distance };
    const want = Math.min(k, eligible.length);

    const picked = new Set<number>();
    picked.add(eligible.length - 1);
    for (const i of this.policy.select(view, k)) {
      if (picked.size >= want) break;
      if (Number.isInteger(i) && i >= 0 && i < eligible.length) picked.add(i);
    }
    // Top up (a policy may return fewer, e.g. when targets collide): farthest-in-step fill.
    while (picked.size < want) {
      let best = -1;
      let bestD = -1;
      for (let i = 0; i < eligible.length; i++) {
        if (picked.has(i)) continue;
        const s = eligible[i]?.step ?? 0;
        let d = Infinity;
        for (const j of picked) d = Math.min(d, Math.abs(s - (eligible[j]?.step ?? 0)));
        if (d > bestD) {
          bestD = d;
          best = i;
        }
      }
      if (best < 0) break;
      picked.add(best);
    }
    const order = [...picked].sort((a, b) => a - b);
    const chosen = order.map((i) => eligible[i]).filter((e): e is MutableEntry => e !== undefined);
    return {
      frames: chosen.map((e) => e.frame),
      positions: chosen.map((e) => e.step),
      offsets: chosen.map((e) => e.step - newest.step),
      poses: chosen.map((e) => e.pose),
    };
  }
}
