/**
 * Candidate instructions for the planner: enumeration of primitive-action sequences with pruning of
 * equivalent ones, i.i.d. sampling, and the cross-entropy method (CEM) as Navigation World Models plans.
 * Every generator reads the world model's action vocabulary (`WorldModelInfo.actions`), never emits `stop`,
 * returns sequences of exactly `horizon` actions, and is deterministic for a given seed (no `Math.random`).
 *
 * Usage:
 * ```ts
 * const seqs = enumerateCandidates(wm.info.actions, wm.info.horizon, { max: 8 });
 * const more = sampleCandidates(wm.info.actions, 4, 16, createRng(7));
 * const cem = new CrossEntropyMethod(wm.info.actions, 4, { seed: 7 });
 * const { best } = await cem.optimise(async (cands) => cands.map(score));
 * ```
 */
import { mulberry32 } from './random-planner.js';
import { V4sError } from '../errors.js';
import type { Pose } from '../types.js';
import type { WorldModelActionSpec } from '../worldmodel/world-model.js';

/** An action vocabulary: name → kind and the step size it was trained on (a manifest's `actions`). */
export type ActionVocabulary = Readonly<Record<string, WorldModelActionSpec>>;

/** A seeded uniform generator of floats in [0, 1). */
export type Rng = () => number;

/** mulberry32 (the random planner's generator): a small, fast, seeded PRNG. Same seed → same sequence. */
export function createRng(seed: number): Rng {
  return mulberry32(seed);
}

/** How an action moves the agent, for pruning and dead reckoning. */
export interface ActionMotion {
  readonly name: string;
  readonly kind: WorldModelActionSpec['kind'];
  /** Metres along the heading (negative for a name containing `back`); 0 for non-moves. */
  readonly forward: number;
  /** Degrees, positive = counter-clockwise seen from above (left); 0 for non-turns. */
  readonly yawDeg: number;
  /** +1 for `left`/`up` names, −1 for `right`/`down`, 0 when the direction is unknown. */
  readonly direction: -1 | 0 | 1;
}

/** The motion of one action of a vocabulary. Directions come from the name (`left`/`right`, `up`/`down`). */
export function actionMotion(name: string, spec: WorldModelActionSpec): ActionMotion {
  const lower = name.toLowerCase();
  let direction: -1 | 0 | 1 = 0;
  if (spec.kind === 'turn') direction = lower.includes('left') ? 1 : lower.includes('right') ? -1 : 0;
  if (spec.kind === 'look') direction = lower.includes('up') ? 1 : lower.includes('down') ? -1 : 0;
  const forward = spec.kind === 'move' ? (lower.includes('back') ? -spec.amount : spec.amount) : 0;
  const yawDeg = spec.kind === 'turn' ? (direction === -1 ? -spec.amount : spec.amount) : 0;
  return { name, kind: spec.kind, forward, yawDeg, direction };
}

/** The plannable actions of a vocabulary, in its key order: everything except `stop` (by kind or name). */
export function plannableActions(vocab: ActionVocabulary): ActionMotion[] {
  const out: ActionMotion[] = [];
  for (const [name, spec] of Object.entries(vocab)) {
    if (spec.kind === 'stop' || name === 'stop') continue;
    out.push(actionMotion(name, spec));
  }
  return out;
}

function checkHorizon(horizon: number, what: string): void {
  if (!Number.isInteger(horizon) || horizon < 1) {
    throw new V4sError('E_CONFIG', `${what}: horizon must be a positive integer, got ${String(horizon)}`);
  }
}

function requireActions(vocab: ActionVocabulary, what: string): ActionMotion[] {
  const acts = plannableActions(vocab);
  if (acts.length === 0) {
    throw new V4sError('E_MODEL_ACTION', `${what}: the vocabulary has no plannable action (${Object.keys(vocab).join(', ') || 'empty'})`);
  }
  return acts;
}

/** A floor-plane pose for dead reckoning: metres, yaw in radians (0 looks along −Z, positive = left). */
export interface PlanarPose {
  readonly x: number;
  readonly z: number;
  readonly yaw: number;
}

/** Floor-plane pose of a Habitat pose (+Y up, −Z forward): position x/z, yaw of the forward vector. */
export function planarPose(pose: Pose): PlanarPose {
  const [qx, qy, qz, qw] = pose.rotation;
  // Forward = q · (0, 0, −1) · q⁻¹; yaw = atan2(−f_x, −f_z) so that yaw 0 looks along −Z and left is positive.
  const fx = -2 * (qx * qz + qw * qy);
  const fz = -(1 - 2 * (qx * qx + qy * qy));
  return { x: pose.position[0], z: pose.position[2], yaw: Math.atan2(-fx, -fz) };
}

/**
 * Dead-reckon a planar pose through action names with their trained step sizes; returns the pose after
 * each action. `stall[t]` ∈ [0, 1] (optional) scales the t-th move (1 = fully blocked).
 */
export function deadReckon(
  start: PlanarPose,
  actions: readonly string[],
  vocab: ActionVocabulary,
  stall?: readonly number[],
): PlanarPose[] {
  const out: PlanarPose[] = [];
  let { x, z, yaw } = start;
  for (const [t, name] of actions.entries()) {
    const spec = vocab[name];
    if (spec !== undefined) {
      const m = actionMotion(name, spec);
      if (m.forward !== 0) {
        const d = m.forward * (1 - Math.min(1, Math.max(0, stall?.[t] ?? 0)));
        x += -Math.sin(yaw) * d;
        z += -Math.cos(yaw) * d;
      }
      yaw += (m.yawDeg * Math.PI) / 180;
    }
    out.push({ x, z, yaw });
  }
  return out;
}

/** Options of `enumerateCandidates`. */
export interface EnumerateOptions {
  /**
   * `canonical` (default): turns first, in one direction, then moves — `turn_left`^k `move_forward`^(H−k) and
   * the same to the right, k = 0..H (2H + 1 sequences for the Habitat vocabulary). `pruned`: every sequence
   * except those with equivalent or redundant forms (opposite turns or opposite looks mixed in one sequence).
   */
  readonly form?: 'canonical' | 'pruned';
  /** Keep at most this many, chosen deterministically and well spread (farthest-point on the end pose). */
  readonly max?: number;
}

function enumerateAll(acts: readonly ActionMotion[], horizon: number): ActionMotion[][] {
  let seqs: ActionMotion[][] = [[]];
  for (let t = 0; t < horizon; t++) {
    const next: ActionMotion[][] = [];
    for (const s of seqs) for (const a of acts) next.push([...s, a]);
    seqs = next;
    if (seqs.length > 200_000) {
      throw new V4sError('E_CONFIG', `enumerateCandidates: ${acts.length}^${horizon} sequences is too many; use form 'canonical', sampling or CEM`);
    }
  }
  return seqs;
}

/** Opposite turns (or opposite looks) in one sequence: some shorter sequence reaches the same pose. */
function mixesOpposites(seq: readonly ActionMotion[]): boolean {
  for (const kind of ['turn', 'look'] as const) {
    let pos = false;
    let neg = false;
    for (const a of seq) {
      if (a.kind !== kind) continue;
      if (a.direction > 0) pos = true;
      if (a.direction < 0) neg = true;
    }
    if (pos && neg) return true;
  }
  return false;
}

/** Pose-space feature of a sequence for spreading: end x/z in steps of the forward amount, yaw in turns. */
function sequenceFeature(seq: readonly ActionMotion[], vocab: ActionVocabulary): number[] {
  const names = seq.map((a) => a.name);
  const moves = seq.filter((a) => a.forward !== 0);
  const turns = seq.filter((a) => a.yawDeg !== 0);
  const stepM = moves.length > 0 ? Math.abs(moves[0]?.forward ?? 1) : 1;
  const turnRad = turns.length > 0 ? (Math.abs(turns[0]?.yawDeg ?? 30) * Math.PI) / 180 : Math.PI / 6;
  const poses = deadReckon({ x: 0, z: 0, yaw: 0 }, names, vocab);
  const end = poses[poses.length - 1] ?? { x: 0, z: 0, yaw: 0 };
  const looks = seq.reduce((s, a) => s + (a.kind === 'look' ? a.direction : 0), 0);
  // The first action decides what MPC executes: weight it so that every first action stays represented.
  const first = seq[0];
  const firstCode = first === undefined ? 0 : first.forward !== 0 ? 0 : first.yawDeg > 0 ? 2 : first.yawDeg < 0 ? -2 : 1;
  return [end.x / stepM, end.z / stepM, end.yaw / turnRad, looks, firstCode];
}

/** Deterministic farthest-point subset: starts at index 0, then repeatedly the farthest (ties → lower index). */
function spreadSubset<T>(items: readonly T[], features: readonly number[][], max: number): T[] {
  if (items.length <= max) return [...items];
  const chosen: number[] = [0];
  const minD = features.map((f) => dist2(f, features[0] ?? f));
  while (chosen.length < max) {
    let best = -1;
    let bestD = -1;
    for (let i = 0; i < items.length; i++) {
      const d = minD[i] ?? 0;
      if (d > bestD + 1e-12) {
        bestD = d;
        best = i;
      }
    }
    if (best < 0 || bestD <= 0) break;
    chosen.push(best);
    const fb = features[best] ?? [];
    for (let i = 0; i < items.length; i++) minD[i] = Math.min(minD[i] ?? 0, dist2(features[i] ?? [], fb));
  }
  chosen.sort((a, b) => a - b);
  return chosen.map((i) => items[i] as T);
}

function dist2(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
  return s;
}

/**
 * Primitive-action sequences of length `horizon`, with equivalent ones pruned (see `EnumerateOptions.form`).
 * Order: all-forward first, then by turn count (left before right). With `max`, a deterministic, well-spread
 * subset (end poses far apart, every first action kept where possible), in the same order.
 *
 * For move_forward/turn_left/turn_right and H = 4: canonical → 9 sequences, pruned → 31 (of 81).
 */
export function enumerateCandidates(vocab: ActionVocabulary, horizon: number, options: EnumerateOptions = {}): string[][] {
  checkHorizon(horizon, 'enumerateCandidates');
  const acts = requireActions(vocab, 'enumerateCandidates');
  const max = options.max;
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    throw new V4sError('E_CONFIG', `enumerateCandidates: max must be a positive integer, got ${String(max)}`);
  }
  let seqs: ActionMotion[][];
  if ((options.form ?? 'canonical') === 'canonical') {
    const moves = acts.filter((a) => a.kind === 'move' && a.forward > 0);
    const turns = acts.filter((a) => a.kind === 'turn');
    const move = moves[0];
    seqs = [];
    if (move !== undefined) seqs.push(Array.from({ length: horizon }, () => move));
    for (let k = 1; k <= horizon; k++) {
      for (const turn of turns) {
        if (move === undefined && k < horizon) continue;
        seqs.push([...Array.from({ length: k }, () => turn), ...Array.from({ length: horizon - k }, () => move ?? turn)]);
      }
    }
    if (seqs.length === 0) {
      // A vocabulary with neither a forward move nor a turn: repeat each action.
      seqs = acts.map((a) => Array.from({ length: horizon }, () => a));
    }
  } else {
    seqs = enumerateAll(acts, horizon).filter((s) => !mixesOpposites(s));
    const turnCount = (s: readonly ActionMotion[]): number => s.filter((a) => a.kind !== 'move').length;
    // Stable sort: fewer non-move actions first, so all-forward leads; ties keep lexicographic vocab order.
    seqs = seqs
      .map((s, i) => ({ s, i }))
      .sort((p, q) => turnCount(p.s) - turnCount(q.s) || p.i - q.i)
      .map((p) => p.s);
  }
  if (max !== undefined && seqs.length > max) {
    seqs = spreadSubset(seqs, seqs.map((s) => sequenceFeature(s, vocab)), max);
  }
  return seqs.map((s) => s.map((a) => a.name));
}

/** Per-action probabilities: one table for every step, or one table per step. Unnormalised weights are fine. */
export type ActionProbabilities = Readonly<Record<string, number>> | readonly Readonly<Record<string, number>>[];

function stepWeights(acts: readonly ActionMotion[], probs: ActionProbabilities | undefined, t: number, what: string): number[] {
  const table = probs === undefined ? undefined : Array.isArray(probs) ? (probs as readonly Readonly<Record<string, number>>[])[t] : (probs as Readonly<Record<string, number>>);
  if (probs !== undefined && table === undefined) {
    throw new V4sError('E_CONFIG', `${what}: no probabilities for step ${t}`);
  }
  const w = acts.map((a) => (table === undefined ? 1 : table[a.name] ?? 0));
  if (w.some((v) => !(v >= 0) || !Number.isFinite(v))) {
    throw new V4sError('E_CONFIG', `${what}: probabilities must be finite and ≥ 0, step ${t}: ${JSON.stringify(table)}`);
  }
  if (table !== undefined) {
    for (const name of Object.keys(table)) {
      if (!acts.some((a) => a.name === name) && (table[name] ?? 0) > 0) {
        throw new V4sError('E_MODEL_ACTION', `${what}: "${name}" is not a plannable action of the vocabulary (${acts.map((a) => a.name).join(', ')})`);
      }
    }
  }
  if (w.reduce((s, v) => s + v, 0) <= 0) throw new V4sError('E_CONFIG', `${what}: probabilities of step ${t} sum to 0`);
  return w;
}

function draw(weights: readonly number[], rng: Rng): number {
  const total = weights.reduce((s, v) => s + v, 0);
  let u = rng() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i] ?? 0;
    if (u < 0) return i;
  }
  // Float rounding: the last action with positive weight.
  for (let i = weights.length - 1; i >= 0; i--) if ((weights[i] ?? 0) > 0) return i;
  return 0;
}

/**
 * `n` sequences of `horizon` actions, each step drawn independently from `probs` (uniform over the plannable
 * actions by default). Not de-duplicated. Deterministic for a given `rng` state.
 */
export function sampleCandidates(vocab: ActionVocabulary, horizon: number, n: number, rng: Rng, probs?: ActionProbabilities): string[][] {
  checkHorizon(horizon, 'sampleCandidates');
  if (!Number.isInteger(n) || n < 0) throw new V4sError('E_CONFIG', `sampleCandidates: n must be an integer ≥ 0, got ${String(n)}`);
  const acts = requireActions(vocab, 'sampleCandidates');
  const weights = Array.from({ length: horizon }, (_, t) => stepWeights(acts, probs, t, 'sampleCandidates'));
  const out: string[][] = [];
  for (let i = 0; i < n; i++) {
    out.push(weights.map((w) => (acts[draw(w, rng)] as ActionMotion).name));
  }
  return out;
}

/** Options of the cross-entropy method. */
export interface CemOptions {
  /** Samples per iteration. Default 32. */
  readonly samples?: number;
  /** Elites (best K) refit on. Default 6. */
  readonly elites?: number;
  /** Iterations (imagine + score rounds). Default 3. */
  readonly iterations?: number;
  /** Weight of the refit against the previous distribution: p ← α·fit + (1−α)·p. Default 0.7. */
  readonly smoothing?: number;
  /** Floor of every action's probability after refit (keeps exploring). Default 0.02. */
  readonly minProbability?: number;
  /** Initial per-step distribution. Default uniform. */
  readonly initial?: ActionProbabilities;
  /** Seed of the sampler. Default 0. */
  readonly seed?: number;
  /** Add these sequences to the first iteration's samples (e.g. the enumerated canonical set). */
  readonly seeds?: readonly (readonly string[])[];
}

/** A scored candidate seen by CEM. */
export interface CemEvaluation {
  readonly actions: readonly string[];
  readonly score: number;
  readonly iteration: number;
}

/** Result of `CrossEntropyMethod.optimise`. */
export interface CemResult {
  /** The best sequence seen over all iterations. */
  readonly best: readonly string[];
  readonly bestScore: number;
  /** Every candidate scored, in order (duplicates within an iteration are scored once). */
  readonly evaluated: CemEvaluation[];
  /** The per-step distribution after each iteration (name → probability), for reports. */
  readonly distributions: Record<string, number>[][];
}

/** Scores a batch of candidates (one number each, higher is better); async so a world model can imagine them. */
export type BatchScorer = (candidates: string[][], iteration: number) => Promise<readonly number[]>;

/**
 * The cross-entropy method over discrete action sequences: a categorical distribution per step; each
 * iteration samples N sequences, scores them in one batch, refits each step's distribution on the best K
 * (with smoothing and a floor), as Navigation World Models plans (there over a continuous endpoint).
 */
export class CrossEntropyMethod {
  readonly #acts: ActionMotion[];
  readonly #horizon: number;
  readonly #samples: number;
  readonly #elites: number;
  readonly #iterations: number;
  readonly #smoothing: number;
  readonly #minP: number;
  readonly #initial: number[][];
  readonly #seed: number;
  readonly #seeds: readonly (readonly string[])[];

  constructor(vocab: ActionVocabulary, horizon: number, options: CemOptions = {}) {
    checkHorizon(horizon, 'CrossEntropyMethod');
    this.#acts = requireActions(vocab, 'CrossEntropyMethod');
    this.#horizon = horizon;
    this.#samples = options.samples ?? 32;
    this.#elites = options.elites ?? 6;
    this.#iterations = options.iterations ?? 3;
    this.#smoothing = options.smoothing ?? 0.7;
    this.#minP = options.minProbability ?? 0.02;
    this.#seed = options.seed ?? 0;
    const intOk = (v: number, lo: number): boolean => Number.isInteger(v) && v >= lo;
    if (!intOk(this.#samples, 1)) throw new V4sError('E_CONFIG', `CEM: samples must be an integer ≥ 1, got ${String(this.#samples)}`);
    if (!intOk(this.#elites, 1) || this.#elites > this.#samples) {
      throw new V4sError('E_CONFIG', `CEM: elites must be an integer in [1, samples=${this.#samples}], got ${String(this.#elites)}`);
    }
    if (!intOk(this.#iterations, 1)) throw new V4sError('E_CONFIG', `CEM: iterations must be an integer ≥ 1, got ${String(this.#iterations)}`);
    if (!(this.#smoothing > 0 && this.#smoothing <= 1)) throw new V4sError('E_CONFIG', `CEM: smoothing must be in (0, 1], got ${String(this.#smoothing)}`);
    if (!(this.#minP >= 0 && this.#minP * this.#acts.length < 1)) {
      throw new V4sError('E_CONFIG', `CEM: minProbability must be ≥ 0 and below 1/${this.#acts.length}, got ${String(this.#minP)}`);
    }
    this.#initial = Array.from({ length: horizon }, (_, t) => normalise(stepWeights(this.#acts, options.initial, t, 'CEM initial')));
    for (const s of options.seeds ?? []) this.#checkSequence(s);
    this.#seeds = options.seeds ?? [];
  }

  #checkSequence(s: readonly string[]): void {
    if (s.length !== this.#horizon) {
      throw new V4sError('E_CONFIG', `CEM: seed sequence [${s.join(', ')}] has ${s.length} actions, horizon is ${this.#horizon}`);
    }
    for (const a of s) {
      if (!this.#acts.some((m) => m.name === a)) throw new V4sError('E_MODEL_ACTION', `CEM: seed sequence action "${a}" is not plannable`);
    }
  }

  /** Run the iterations; `score` is called once per iteration with that iteration's unique samples. */
  async optimise(score: BatchScorer, signal?: AbortSignal): Promise<CemResult> {
    const rng = createRng(this.#seed);
    let dist = this.#initial.map((p) => [...p]);
    const evaluated: CemEvaluation[] = [];
    const distributions: Record<string, number>[][] = [];
    let best: readonly string[] = [];
    let bestScore = -Infinity;
    for (let it = 0; it < this.#iterations; it++) {
      signal?.throwIfAborted();
      const drawn: string[][] = it === 0 ? this.#seeds.map((s) => [...s]) : [];
      while (drawn.length < this.#samples) {
        drawn.push(dist.map((p) => (this.#acts[draw(p, rng)] as ActionMotion).name));
      }
      // Score each distinct sequence once; duplicates keep their weight in the refit.
      const keys = drawn.map((s) => s.join('\u0000'));
      const unique: string[][] = [];
      const index = new Map<string, number>();
      for (const [i, k] of keys.entries()) {
        if (!index.has(k)) {
          index.set(k, unique.length);
          unique.push(drawn[i] as string[]);
        }
      }
      const scores = await score(unique, it);
      if (scores.length !== unique.length) {
        throw new V4sError('E_CONFIG', `CEM: the scorer returned ${scores.length} scores for ${unique.length} candidates`);
      }
      for (const [i, s] of unique.entries()) {
        const v = scores[i] ?? NaN;
        evaluated.push({ actions: s, score: v, iteration: it });
        if (v > bestScore) {
          bestScore = v;
          best = s;
        }
      }
      const ranked = drawn
        .map((s, i) => ({ s, v: scores[index.get(keys[i] as string) ?? 0] ?? NaN }))
        .filter((e) => !Number.isNaN(e.v))
        .sort((a, b) => b.v - a.v)
        .slice(0, this.#elites);
      if (ranked.length > 0) {
        dist = dist.map((p, t) => {
          const counts = new Array<number>(this.#acts.length).fill(0);
          for (const e of ranked) {
            const j = this.#acts.findIndex((a) => a.name === e.s[t]);
            if (j >= 0) counts[j] = (counts[j] ?? 0) + 1 / ranked.length;
          }
          const mixed = p.map((q, j) => this.#smoothing * (counts[j] ?? 0) + (1 - this.#smoothing) * q);
          return normalise(mixed.map((q) => Math.max(this.#minP, q)));
        });
      }
      distributions.push(dist.map((p) => Object.fromEntries(this.#acts.map((a, j) => [a.name, p[j] ?? 0]))));
    }
    return { best, bestScore, evaluated, distributions };
  }
}

function normalise(w: readonly number[]): number[] {
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / s);
}

/**
 * The agent's floor-plane pose after an observation: the observed pose when there is one; otherwise the
 * previous pose dead-reckoned through the actions executed since (`executed`, in order; a move followed by
 * `collided` is assumed not to have moved); the origin facing −Z when nothing is known yet.
 */
export function advancePose(
  previous: PlanarPose | undefined,
  executed: readonly string[],
  observation: { readonly pose?: Pose; readonly collided?: boolean },
  vocab: ActionVocabulary,
): PlanarPose {
  if (observation.pose !== undefined) return planarPose(observation.pose);
  if (previous === undefined) return { x: 0, z: 0, yaw: 0 };
  const stall = executed.map((_, i) => (i === executed.length - 1 && observation.collided === true ? 1 : 0));
  const poses = deadReckon(previous, executed, vocab, stall);
  return poses[poses.length - 1] ?? previous;
}
