/**
 * Pose conversion between other simulators' and robots' frames and the SDK's own (Habitat's: metres, +Y up,
 * −Z forward, right-handed, quaternion [x, y, z, w]), with mathjs.
 *
 * A frame is described by the 3×3 matrix B that maps its coordinates to Habitat's (orthonormal; det +1 for a
 * right-handed frame, −1 for a left-handed one). Then a position maps as p' = B·p and a rotation matrix as
 * R' = B·R·Bᵀ. For the quaternion (w, v) this is w' = w and v' = det(B)·B·v: v is an axial vector, which a
 * mirror flips once more. Keeping w makes the result the closed form, sign included.
 *
 * Usage:
 *   const pose = unityToHabitatPose({ position: [1, 0, 2], rotation: [0, 0.7071, 0, 0.7071] });
 *   // → position [1, 0, -2], rotation [0, -0.7071, 0, 0.7071] (a right turn in both frames)
 *
 * Imports mathjs (about a second to load), so the agent side loads this module only for a peer that declares
 * a frame other than Habitat's.
 */
import { det, multiply, transpose, type Matrix } from 'mathjs';
import { V4sError } from '../errors.js';
import type { Pose } from '../types.js';

/** A 3×3 change-of-basis matrix, rows of numbers. */
export type Basis3 = readonly [readonly [number, number, number], readonly [number, number, number], readonly [number, number, number]];

/**
 * Unity → Habitat: Unity is left-handed, +Y up, +Z forward, +X right. Habitat is right-handed, +Y up, −Z
 * forward, +X right: a mirror of the z axis.
 */
export const UNITY_TO_HABITAT: Basis3 = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, -1],
];

/**
 * ROS (REP 103: x forward, y left, z up, right-handed) → Habitat (x right, y up, −z forward):
 * habitat x = −ros y, habitat y = ros z, habitat z = −ros x. A proper rotation (det +1).
 */
export const ROS_TO_HABITAT: Basis3 = [
  [0, -1, 0],
  [0, 0, 1],
  [-1, 0, 0],
];

function toArray(m: Matrix | number[] | number[][]): number[] {
  const v = (Array.isArray(m) ? m : m.toArray()) as unknown[];
  return v.flat(2).map((x) => Number(x));
}

function mutableBasis(b: Basis3): number[][] {
  return b.map((row) => [...row]);
}

/** Checks that B is orthonormal (BᵀB = I within 1e-9), else throws E_CONFIG. Returns det(B) (±1). */
export function basisDeterminant(b: Basis3): number {
  const m = mutableBasis(b);
  const prod = toArray(multiply(transpose(m), m) as number[][]);
  const identity = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  if (prod.some((v, i) => Math.abs(v - (identity[i] ?? 0)) > 1e-9)) {
    throw new V4sError('E_CONFIG', 'pose frame basis must be orthonormal (a rotation or a mirror)');
  }
  return Math.sign(det(m));
}

/** Maps a vector with basis B: B·v. */
export function convertVector(v: readonly [number, number, number], b: Basis3): [number, number, number] {
  const out = toArray(multiply(mutableBasis(b), [v[0], v[1], v[2]]) as number[]);
  return [out[0] ?? 0, out[1] ?? 0, out[2] ?? 0];
}

/**
 * Converts a pose whose coordinates are in the frame described by B into Habitat's frame. The rotation is
 * normalised (a quaternion of length 0 or not finite is refused with E_PROTOCOL_FIELD).
 */
export function convertPose(pose: Pose, b: Basis3): Pose {
  const [x, y, z, w] = pose.rotation;
  const n = Math.hypot(x, y, z, w);
  if (!Number.isFinite(n) || n < 1e-9) throw new V4sError('E_PROTOCOL_FIELD', `pose rotation ${JSON.stringify(pose.rotation)} is not a rotation`);
  const s = basisDeterminant(b);
  const v = convertVector([x / n, y / n, z / n], b);
  return {
    position: convertVector(pose.position, b),
    rotation: [s * v[0] + 0, s * v[1] + 0, s * v[2] + 0, w / n],
  };
}

/** Unity pose (left-handed, +Z forward) → Habitat pose: position (x, y, −z), rotation (−x, −y, z, w). */
export function unityToHabitatPose(pose: Pose): Pose {
  return convertPose(pose, UNITY_TO_HABITAT);
}

/** Habitat pose → Unity pose (the same mirror: the conversion is its own inverse). */
export function habitatToUnityPose(pose: Pose): Pose {
  return convertPose(pose, UNITY_TO_HABITAT);
}

/** ROS pose (REP 103, e.g. nav_msgs/Odometry) → Habitat pose. */
export function rosToHabitatPose(pose: Pose): Pose {
  return convertPose(pose, ROS_TO_HABITAT);
}

/** Unity position → Habitat position (x, y, −z). */
export function unityToHabitatPosition(p: readonly [number, number, number]): [number, number, number] {
  return convertVector(p, UNITY_TO_HABITAT);
}

/** Rotation matrix (row-major 3×3) of a quaternion [x, y, z, w] (normalised first). */
export function quaternionToMatrix(q: readonly [number, number, number, number]): number[][] {
  const n = Math.hypot(q[0], q[1], q[2], q[3]);
  const [x, y, z, w] = [q[0] / n, q[1] / n, q[2] / n, q[3] / n];
  return [
    [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
  ];
}

/** Rotates a vector by a quaternion [x, y, z, w]: R(q)·v. */
export function rotateVector(q: readonly [number, number, number, number], v: readonly [number, number, number]): [number, number, number] {
  const out = toArray(multiply(quaternionToMatrix(q), [v[0], v[1], v[2]]) as number[]);
  return [out[0] ?? 0, out[1] ?? 0, out[2] ?? 0];
}
