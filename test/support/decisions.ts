/**
 * Shared by the remote and batching tests: deterministic agent requests for any model package (each agent its
 * own non-contiguous context, candidates and seed) and the decision a planner would take on the rollouts.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Frame, Instruction } from '../../src/types.js';
import type { ModelManifest } from '../../src/worldmodel/manifest.js';
import type { ImagineRequest, Rollout } from '../../src/worldmodel/world-model.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The shipped model package, when it is in the tree (it is trained separately). */
export const SHIPPED_MODEL_DIR = path.join(ROOT, 'models', 'v4s-builtin-small');

export function shippedModelPresent(): boolean {
  return existsSync(path.join(SHIPPED_MODEL_DIR, 'manifest.json'));
}

/** A frame with a per-agent, per-frame pattern (smooth, so decoded futures differ by action). */
export function patternFrame(width: number, height: number, agent: number, k: number): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const v = 128 + 100 * Math.sin(0.35 * x * (c + 1) + 0.21 * y * (agent + 1) + 0.9 * k + c);
        data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width, height, data };
}

/**
 * Agent `agent`'s request: `contextFrames` frames at non-contiguous positions, `candidates` action sequences
 * (every other one with a goal category, when the model has some), seed 1000 + agent.
 */
export function agentRequest(m: ModelManifest, agent: number, options: { contextFrames?: number; candidates?: number; horizon?: number } = {}): ImagineRequest {
  const K = Math.min(options.contextFrames ?? Math.min(3, m.context.maxFrames), m.context.maxFrames);
  const H = options.horizon ?? m.horizon;
  const n = options.candidates ?? 4;
  const { width: W, height: Ht } = m.resolution;
  const frames = Array.from({ length: K }, (_, k) => patternFrame(W, Ht, agent, k));
  const positions = Array.from({ length: K }, (_, k) => 2 * agent + 3 * k + (k > 0 ? 1 : 0));
  const actions = Object.keys(m.instruction.actions);
  const cats = m.instruction.goalCategories.slice(0, 2); // the grounded fixture's third category ("void") yields NaN on purpose
  const candidates: Instruction[] = Array.from({ length: n }, (_, c) => ({
    actions: Array.from({ length: H }, (_, j) => actions[(c * 7 + j * (c + 1) + agent) % actions.length] as string),
    ...(cats.length > 0 && c % 2 === 1 ? { goalCategory: cats[(agent + c) % cats.length] as string } : {}),
  }));
  return { context: { frames, positions }, candidates, horizon: H, seed: 1000 + agent };
}

/** Scores of each candidate and the chosen one (argmax): closeness of the last imagined frame to a goal view, plus grounding. */
export function decide(rollouts: readonly Rollout[], goal: Frame): { scores: number[]; chosen: number } {
  const scores = rollouts.map((r) => {
    const last = r.frames[r.frames.length - 1];
    let s = 0;
    if (last) {
      let d = 0;
      for (let i = 0; i < last.data.length; i++) d += Math.abs((last.data[i] as number) - (goal.data[i] as number));
      s -= d / last.data.length / 255;
    }
    const g = r.grounding?.[r.grounding.length - 1];
    if (g) s += g.data.reduce((a, b) => a + b, 0) / g.data.length;
    if (r.currentGrounding) s += 0.5 * (r.currentGrounding.data.reduce((a, b) => a + b, 0) / r.currentGrounding.data.length);
    return s;
  });
  let chosen = 0;
  scores.forEach((s, i) => {
    if (s > (scores[chosen] as number)) chosen = i;
  });
  return { scores, chosen };
}

/** Largest |a − b| over two rollout lists: frames (bytes), grounding and current grounding (probabilities). */
export function rolloutDiff(a: readonly Rollout[], b: readonly Rollout[]): { frames: number; grounding: number } {
  if (a.length !== b.length) throw new Error(`rollout counts differ: ${a.length} vs ${b.length}`);
  let frames = 0;
  let grounding = 0;
  a.forEach((ra, c) => {
    const rb = b[c] as Rollout;
    if (ra.frames.length !== rb.frames.length) throw new Error(`candidate ${c}: frame counts differ`);
    ra.frames.forEach((f, j) => f.data.forEach((v, i) => (frames = Math.max(frames, Math.abs(v - (rb.frames[j]?.data[i] ?? NaN))))));
    if ((ra.grounding === undefined) !== (rb.grounding === undefined)) throw new Error(`candidate ${c}: grounding present on one side only`);
    ra.grounding?.forEach((g, j) => g.data.forEach((v, i) => (grounding = Math.max(grounding, Math.abs(v - (rb.grounding?.[j]?.data[i] ?? NaN))))));
    if ((ra.currentGrounding === undefined) !== (rb.currentGrounding === undefined)) throw new Error(`candidate ${c}: currentGrounding present on one side only`);
    ra.currentGrounding?.data.forEach((v, i) => (grounding = Math.max(grounding, Math.abs(v - (rb.currentGrounding?.data[i] ?? NaN)))));
  });
  return { frames, grounding };
}
