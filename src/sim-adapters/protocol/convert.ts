/**
 * Async bridges between wire packets (codec.ts) and the SDK's objects (Observation, EpisodeGoal,
 * OracleRollout), encoding and decoding the images with image.ts. The simulator side calls the `encode*`
 * functions, the agent side the `decode*` ones.
 */
import { V4sError } from '../../errors.js';
import type { EpisodeInfo, Observation, Pose } from '../../types.js';
import type { EpisodeGoal, ImageEncoding, OracleRollout, PoseFrame } from '../environment.js';
import { encodeObservationPacket, encodeOraclePacket } from './codec.js';
import { decodeFrame, encodeFrame, type ImageEncodeOptions } from './image.js';
import type {
  ImageDescriptor,
  ObservationHeader,
  ObservationPacket,
  OracleHeader,
  OraclePacket,
  OracleStepHeader,
  RequestId,
  WireGoal,
  WireInfo,
  WirePose,
} from './types.js';

/** What one observation message carries, in SDK terms. */
export interface ObservationContent {
  readonly observation: Observation;
  readonly terminated: boolean;
  readonly truncated: boolean;
  readonly goal?: EpisodeGoal;
}

/** The encoding a simulator uses for images, with the encoder's options. */
export interface FrameEncoding extends ImageEncodeOptions {
  readonly encoding: ImageEncoding;
}

const NUMERIC_MEASURES = ['distanceToGoal', 'shortestPathLength'] as const;

/** EpisodeInfo → wire: a non-finite distance (unreachable) becomes null, as JSON cannot carry Infinity. */
function toWireInfo(info: EpisodeInfo): WireInfo {
  const out: Record<string, unknown> = { ...info };
  for (const k of NUMERIC_MEASURES) {
    const v = out[k];
    if (typeof v === 'number' && !Number.isFinite(v)) out[k] = null;
  }
  // Validated after serialisation by encodeBinaryMessage (the receiver's own checks).
  return out as WireInfo;
}

/** Wire → EpisodeInfo: a null measure means "unknown", and is left out. */
function fromWireInfo(info: WireInfo): EpisodeInfo {
  const out: Record<string, unknown> = { ...info };
  for (const k of NUMERIC_MEASURES) if (out[k] === null) delete out[k];
  return out as EpisodeInfo;
}

function wirePose(p: Pose): WirePose {
  return { position: p.position, rotation: p.rotation };
}

function descriptor(width: number, height: number, encoding: ImageEncoding, bytes: Uint8Array): ImageDescriptor {
  return { width, height, encoding, byteLength: bytes.byteLength };
}

/** Encodes a reset/step result (or a pushed frame when `id` is null) into one binary observation message. */
export async function encodeObservationMessage(
  id: RequestId | null,
  content: ObservationContent,
  enc: FrameEncoding,
): Promise<Uint8Array> {
  const { observation: obs, goal } = content;
  const image = await encodeFrame(obs.rgb, enc.encoding, enc);
  const header: { -readonly [K in keyof ObservationHeader]: ObservationHeader[K] } = {
    op: 'observation',
    id,
    step: obs.step,
    info: toWireInfo(obs.info),
    terminated: content.terminated,
    truncated: content.truncated,
    image: descriptor(obs.rgb.width, obs.rgb.height, enc.encoding, image),
  };
  if (obs.pose !== undefined) header.pose = wirePose(obs.pose);
  if (obs.collided !== undefined) header.collided = obs.collided;
  let goalImage: Uint8Array | undefined;
  if (goal !== undefined) {
    const g: { -readonly [K in keyof WireGoal]: WireGoal[K] } = { task: goal.task };
    if (goal.category !== undefined) g.category = goal.category;
    if (goal.position !== undefined) g.position = goal.position;
    if (goal.image !== undefined) {
      goalImage = await encodeFrame(goal.image, enc.encoding, enc);
      g.image = descriptor(goal.image.width, goal.image.height, enc.encoding, goalImage);
    }
    header.goal = g;
  }
  return encodeObservationPacket(goalImage === undefined ? { header, image } : { header, image, goalImage });
}

/** Encodes oracle rollouts (one per requested sequence) into one binary oracle message. */
export async function encodeOracleMessage(id: RequestId, rollouts: readonly OracleRollout[], enc: FrameEncoding): Promise<Uint8Array> {
  const images: Uint8Array[][] = [];
  const masks: Uint8Array[][] = [];
  const header: OracleHeader = {
    op: 'oracle',
    id,
    rollouts: await Promise.all(
      rollouts.map(async (r, i) => {
        if (r.masks.length !== r.frames.length || r.poses.length !== r.frames.length) {
          throw new V4sError(
            'E_SIMULATOR',
            `oracle rollout ${i}: ${r.frames.length} frames, ${r.masks.length} masks, ${r.poses.length} poses (must be equal)`,
          );
        }
        const ri: Uint8Array[] = [];
        const steps: OracleStepHeader[] = [];
        for (let t = 0; t < r.frames.length; t++) {
          const frame = r.frames[t];
          const mask = r.masks[t];
          const pose = r.poses[t];
          if (frame === undefined || mask === undefined || pose === undefined) throw new V4sError('E_SIMULATOR', `oracle rollout ${i}: step ${t} missing`);
          const bytes = await encodeFrame(frame, enc.encoding, enc);
          ri.push(bytes);
          steps.push({
            image: descriptor(frame.width, frame.height, enc.encoding, bytes),
            mask: { width: frame.width, height: frame.height, byteLength: mask.byteLength },
            pose: wirePose(pose),
          });
        }
        images[i] = ri;
        masks[i] = r.masks;
        return { steps };
      }),
    ),
  };
  return encodeOraclePacket({ header, images, masks });
}

/** Converts wire poses and positions into Habitat's frame; the identity for a `habitat` peer. */
interface FrameConverter {
  readonly pose: (p: WirePose) => Pose;
  readonly position: (p: readonly [number, number, number]) => readonly [number, number, number];
}

const IDENTITY_FRAME: FrameConverter = {
  pose: (p) => ({ position: p.position, rotation: p.rotation }),
  position: (p) => p,
};

/** The converter for a peer's declared frame. mathjs (pose-frames.ts) is loaded only when one is needed. */
async function frameConverter(poseFrame: PoseFrame | undefined): Promise<FrameConverter> {
  if (poseFrame === undefined || poseFrame === 'habitat') return IDENTITY_FRAME;
  const { unityToHabitatPose, unityToHabitatPosition } = await import('../pose-frames.js');
  return { pose: unityToHabitatPose, position: unityToHabitatPosition };
}

/**
 * Decodes an observation packet's images and returns the SDK objects. Poses and the goal position are
 * converted to Habitat's frame when the peer declared another `poseFrame`. Throws E_FRAME_DECODE /
 * E_FRAME_SIZE / E_PROTOCOL_BINARY.
 */
export async function decodeObservationPacket(packet: ObservationPacket, poseFrame?: PoseFrame): Promise<ObservationContent> {
  const h = packet.header;
  const what = h.id === null ? 'pushed observation' : `observation (id ${h.id})`;
  const rgb = await decodeFrame(packet.image, h.image, `${what} image`);
  const frame = await frameConverter(poseFrame);
  const observation: { -readonly [K in keyof Observation]: Observation[K] } = { step: h.step, rgb, info: fromWireInfo(h.info) };
  if (h.pose !== undefined) observation.pose = frame.pose(h.pose);
  if (h.collided !== undefined) observation.collided = h.collided;
  if (h.goal === undefined) return { observation, terminated: h.terminated, truncated: h.truncated };
  const g = h.goal;
  const goal: { -readonly [K in keyof EpisodeGoal]: EpisodeGoal[K] } = { task: g.task };
  if (g.category !== undefined) goal.category = g.category;
  if (g.position !== undefined) goal.position = frame.position(g.position);
  if (g.image !== undefined && packet.goalImage !== undefined) {
    goal.image = await decodeFrame(packet.goalImage, g.image, `${what} goal image`);
  }
  return { observation, terminated: h.terminated, truncated: h.truncated, goal };
}

/** Decodes an oracle packet into rollouts (frames decoded, masks copied out of the message buffer, poses in Habitat's frame). */
export async function decodeOraclePacket(packet: OraclePacket, poseFrame?: PoseFrame): Promise<OracleRollout[]> {
  const h = packet.header;
  const frame = await frameConverter(poseFrame);
  return Promise.all(
    h.rollouts.map(async (r, i) => {
      const frames = await Promise.all(
        r.steps.map((s, t) => decodeFrame(packet.images[i]?.[t] ?? new Uint8Array(0), s.image, `oracle (id ${h.id}) rollout ${i} step ${t} image`)),
      );
      const masks = r.steps.map((_, t) => new Uint8Array(packet.masks[i]?.[t] ?? new Uint8Array(0)));
      const poses: Pose[] = r.steps.map((s) => frame.pose(s.pose));
      return { frames, masks, poses };
    }),
  );
}
