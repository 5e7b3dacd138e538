/**
 * Procedural indoor scenes for the built-in simulator: 3–5 rectangular rooms on an occupancy grid
 * (0.5 m cells), joined by doorways, each room with its own wall colour, wall pattern and floor; 4–8 objects
 * of six categories placed against walls. Everything follows from the seed (mulberry32), never Math.random.
 *
 * World frame (Habitat's): metres, +Y up. The grid's cell (i, j) covers x ∈ [i·c, (i+1)·c), z ∈ [j·c, (j+1)·c).
 * Usage: `const scene = generateScene(42)`.
 */
import { mulberry32 } from '../../rng.js';

/** Object categories, in id order: category id = index + 1 (0 = none). */
export const CATEGORIES = ['chair', 'sofa', 'plant', 'bed', 'toilet', 'tv'] as const;
export type CategoryName = (typeof CATEGORIES)[number];

/** Category id (1-based) of a name, or 0 when the name is not a category. */
export function categoryId(name: string): number {
  return (CATEGORIES as readonly string[]).indexOf(name) + 1;
}

/** Side of a grid cell, metres. */
export const CELL_SIZE = 0.5;
/** Wall (and ceiling) height, metres. */
export const WALL_HEIGHT = 2.5;
/** Camera height above the floor, metres (Habitat's RGB sensor default). */
export const CAMERA_HEIGHT = 1.25;

export type RGB = readonly [number, number, number];

/** Wall pattern ids: 0 plain, 1 vertical stripes, 2 horizontal bands, 3 bricks, 4 checker, 5 diagonal, 6 gradient. */
export const WALL_PATTERNS = ['plain', 'stripes', 'bands', 'bricks', 'checker', 'diagonal', 'gradient'] as const;

/** How a category looks: billboard size, footprint radius (collision), up to three colours. */
export interface CategoryStyle {
  readonly name: CategoryName;
  readonly width: number;
  readonly height: number;
  readonly radius: number;
  readonly colors: readonly RGB[];
}

/** Per-category geometry and colours; index = category id − 1. Silhouettes are in render.ts. */
export const CATEGORY_STYLES: readonly CategoryStyle[] = [
  { name: 'chair', width: 0.6, height: 0.95, radius: 0.25, colors: [[214, 122, 32], [96, 52, 18]] },
  { name: 'sofa', width: 1.3, height: 0.85, radius: 0.45, colors: [[52, 70, 196], [132, 150, 246]] },
  { name: 'plant', width: 0.6, height: 1.25, radius: 0.22, colors: [[36, 168, 48], [188, 78, 44]] },
  { name: 'bed', width: 1.4, height: 0.75, radius: 0.5, colors: [[240, 238, 230], [198, 30, 58], [112, 66, 36]] },
  { name: 'toilet', width: 0.5, height: 0.8, radius: 0.22, colors: [[250, 250, 255], [150, 150, 166]] },
  { name: 'tv', width: 0.9, height: 1.35, radius: 0.3, colors: [[18, 18, 24], [56, 214, 236]] },
];

/** Look of one room. */
export interface RoomStyle {
  readonly wall: RGB;
  readonly wallAlt: RGB;
  readonly pattern: number;
  readonly floor: RGB;
  readonly floorAlt: RGB;
  /** Off-white tinted by the wall colour, so that ceilings differ between rooms too. */
  readonly ceiling: RGB;
}

/** A room: inclusive cell rectangle and its style. */
export interface Room {
  readonly i0: number;
  readonly j0: number;
  readonly i1: number;
  readonly j1: number;
  readonly style: RoomStyle;
}

/** One object instance; `id` is the instance id in masks (1-based), `category` the category id (1-based). */
export interface SceneObject {
  readonly id: number;
  readonly category: number;
  readonly x: number;
  readonly z: number;
  readonly radius: number;
  readonly width: number;
  readonly height: number;
}

/** A generated scene. Arrays are indexed `j * cols + i`. */
export interface Scene {
  readonly seed: number;
  readonly cols: number;
  readonly rows: number;
  readonly cellSize: number;
  /** 1 = wall, 0 = free. */
  readonly walls: Uint8Array;
  /** Room index of a free cell (door cells belong to one of their rooms), −1 for walls. */
  readonly room: Int8Array;
  /** 1 = doorway cell. */
  readonly door: Uint8Array;
  readonly rooms: readonly Room[];
  readonly objects: readonly SceneObject[];
}

export { mulberry32 };

/** Mix integers into one 32-bit seed (deterministic). */
export function hashSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    // Split into two 32-bit halves so that seeds above 2^32 still mix.
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    for (const v of [lo, hi]) {
      h = Math.imul(h ^ v, 0x01000193);
      h ^= h >>> 13;
      h = Math.imul(h, 0x5bd1e995);
      h ^= h >>> 15;
    }
  }
  return h >>> 0;
}

const WALL_COLORS: readonly RGB[] = [
  [178, 62, 62], [72, 150, 84], [64, 96, 178], [206, 184, 70],
  [146, 82, 170], [60, 164, 164], [212, 126, 58], [150, 150, 150],
];
const FLOOR_COLORS: readonly RGB[] = [
  [122, 84, 52], [104, 104, 110], [172, 152, 118], [54, 64, 100], [86, 104, 70], [140, 70, 70],
];

function scale(c: RGB, k: number): RGB {
  return [Math.min(255, Math.round(c[0] * k)), Math.min(255, Math.round(c[1] * k)), Math.min(255, Math.round(c[2] * k))];
}

/** Ceiling channel: 80 % off-white, 20 % the room's wall colour. */
function tint(c: number): number {
  return Math.round(0.8 * 232 + 0.2 * c);
}

function shuffle<T>(arr: T[], rng: () => number): T[] {
  for (let i = arr.length - 1; i > 0; i--) {
    const k = Math.floor(rng() * (i + 1));
    const t = arr[i] as T;
    arr[i] = arr[k] as T;
    arr[k] = t;
  }
  return arr;
}

interface Rect { i0: number; j0: number; i1: number; j1: number }

const MIN_ROOM = 4; // cells (2 m)

/** True when the circle (x, z, r) overlaps a wall cell or leaves the grid. */
export function circleHitsWall(scene: Scene, x: number, z: number, r: number): boolean {
  const cs = scene.cellSize;
  const i0 = Math.floor((x - r) / cs);
  const i1 = Math.floor((x + r) / cs);
  const j0 = Math.floor((z - r) / cs);
  const j1 = Math.floor((z + r) / cs);
  const r2 = r * r;
  for (let j = j0; j <= j1; j++) {
    for (let i = i0; i <= i1; i++) {
      if (i < 0 || j < 0 || i >= scene.cols || j >= scene.rows) return true;
      if (scene.walls[j * scene.cols + i] === 0) continue;
      const cx = Math.min(Math.max(x, i * cs), (i + 1) * cs);
      const cz = Math.min(Math.max(z, j * cs), (j + 1) * cs);
      const dx = x - cx;
      const dz = z - cz;
      if (dx * dx + dz * dz < r2) return true;
    }
  }
  return false;
}

/** True when the circle (x, z, r) overlaps an object's footprint. */
export function circleHitsObject(scene: Scene, x: number, z: number, r: number): boolean {
  for (const o of scene.objects) {
    const dx = x - o.x;
    const dz = z - o.z;
    const rr = r + o.radius;
    if (dx * dx + dz * dz < rr * rr) return true;
  }
  return false;
}

/** True when an agent of radius r can stand at (x, z). */
export function isFreeCircle(scene: Scene, x: number, z: number, r: number): boolean {
  return !circleHitsWall(scene, x, z, r) && !circleHitsObject(scene, x, z, r);
}

/**
 * Generate the scene of a seed: BSP-split rooms, doorways (a spanning tree plus maybe one loop), per-room
 * styles with distinct wall colours and patterns, 4–8 objects against walls away from doorways.
 */
export function generateScene(seed: number): Scene {
  const rng = mulberry32(hashSeed(seed, 0x5ce7e));
  const cols = 16 + Math.floor(rng() * 13); // 8–14 m
  const rows = 16 + Math.floor(rng() * 13);
  const n = cols * rows;
  const walls = new Uint8Array(n).fill(1);
  const room = new Int8Array(n).fill(-1);
  const door = new Uint8Array(n);

  // Rooms by binary space partition: split the largest splittable leaf until 3–5 rooms.
  const target = 3 + Math.floor(rng() * 3);
  const leaves: Rect[] = [{ i0: 1, j0: 1, i1: cols - 2, j1: rows - 2 }];
  while (leaves.length < target) {
    const order = leaves
      .map((r, k) => ({ k, area: (r.i1 - r.i0 + 1) * (r.j1 - r.j0 + 1) }))
      .sort((a, b) => b.area - a.area);
    let done = false;
    for (const { k } of order) {
      const r = leaves[k] as Rect;
      const w = r.i1 - r.i0 + 1;
      const h = r.j1 - r.j0 + 1;
      const canX = w >= 2 * MIN_ROOM + 1;
      const canZ = h >= 2 * MIN_ROOM + 1;
      if (!canX && !canZ) continue;
      const alongX = canX && (!canZ || w > h || (w === h && rng() < 0.5));
      if (alongX) {
        const s = r.i0 + MIN_ROOM + Math.floor(rng() * (w - 2 * MIN_ROOM));
        leaves.splice(k, 1, { ...r, i1: s - 1 }, { ...r, i0: s + 1 });
      } else {
        const s = r.j0 + MIN_ROOM + Math.floor(rng() * (h - 2 * MIN_ROOM));
        leaves.splice(k, 1, { ...r, j1: s - 1 }, { ...r, j0: s + 1 });
      }
      done = true;
      break;
    }
    if (!done) break;
  }
  leaves.forEach((r, k) => {
    for (let j = r.j0; j <= r.j1; j++) {
      for (let i = r.i0; i <= r.i1; i++) {
        walls[j * cols + i] = 0;
        room[j * cols + i] = k;
      }
    }
  });

  // Doorway candidates: wall cells with different rooms on opposite sides.
  const runs = new Map<string, { a: number; b: number; cells: number[][] }>();
  const addRun = (a: number, b: number, cells: number[]): void => {
    const key = `${Math.min(a, b)}-${Math.max(a, b)}`;
    let e = runs.get(key);
    if (!e) {
      e = { a, b, cells: [] };
      runs.set(key, e);
    }
    e.cells.push(cells);
  };
  const roomAt = (i: number, j: number): number =>
    i < 0 || j < 0 || i >= cols || j >= rows ? -1 : (room[j * cols + i] as number);
  for (let j = 1; j < rows - 1; j++) {
    for (let i = 1; i < cols - 1; i++) {
      if (walls[j * cols + i] === 0) continue;
      // Vertical wall (door crosses along x): pair with the next cell down (z+1) for a 2-cell door.
      const l = roomAt(i - 1, j);
      const r = roomAt(i + 1, j);
      if (l >= 0 && r >= 0 && l !== r) {
        if (roomAt(i - 1, j + 1) === l && roomAt(i + 1, j + 1) === r && walls[(j + 1) * cols + i] === 1) {
          addRun(l, r, [i, j, i, j + 1]);
        }
      }
      const u = roomAt(i, j - 1);
      const d = roomAt(i, j + 1);
      if (u >= 0 && d >= 0 && u !== d) {
        if (roomAt(i + 1, j - 1) === u && roomAt(i + 1, j + 1) === d && walls[j * cols + i + 1] === 1) {
          addRun(u, d, [i, j, i + 1, j]);
        }
      }
    }
  }
  // Spanning tree over room pairs (union-find), then at most one extra door for a loop.
  const parent = leaves.map((_, k) => k);
  const find = (k: number): number => {
    while (parent[k] !== k) k = parent[k] as number;
    return k;
  };
  const pairs = shuffle([...runs.values()].sort((p, q) => (p.a * 16 + p.b) - (q.a * 16 + q.b)), rng);
  const extra: typeof pairs = [];
  const carve = (p: (typeof pairs)[number]): void => {
    const c = p.cells[Math.floor(rng() * p.cells.length)] as number[];
    for (let t = 0; t < 4; t += 2) {
      const k = (c[t + 1] as number) * cols + (c[t] as number);
      walls[k] = 0;
      door[k] = 1;
      room[k] = p.a;
    }
  };
  for (const p of pairs) {
    const ra = find(p.a);
    const rb = find(p.b);
    if (ra !== rb) {
      parent[ra] = rb;
      carve(p);
    } else {
      extra.push(p);
    }
  }
  if (extra.length > 0 && rng() < 0.5) carve(extra[Math.floor(rng() * extra.length)] as (typeof pairs)[number]);

  // Styles: distinct wall colours and patterns per room within a scene.
  const wallOrder = shuffle(WALL_COLORS.map((_, k) => k), rng);
  const patOrder = shuffle(WALL_PATTERNS.map((_, k) => k), rng);
  const floorOrder = shuffle(FLOOR_COLORS.map((_, k) => k), rng);
  const rooms: Room[] = leaves.map((r, k) => {
    const wall = WALL_COLORS[wallOrder[k % wallOrder.length] as number] as RGB;
    const floor = FLOOR_COLORS[floorOrder[k % floorOrder.length] as number] as RGB;
    return {
      ...r,
      style: {
        wall, wallAlt: scale(wall, 0.62), pattern: patOrder[k % patOrder.length] as number, floor, floorAlt: scale(floor, 0.82),
        ceiling: [tint(wall[0]), tint(wall[1]), tint(wall[2])],
      },
    };
  });

  const scene: Scene = { seed, cols, rows, cellSize: CELL_SIZE, walls, room, door, rooms, objects: [] };
  const objects = placeObjects(scene, rng);
  return { ...scene, objects };
}

function placeObjects(scene: Scene, rng: () => number): SceneObject[] {
  const { cols, rows, walls, door } = scene;
  const cs = scene.cellSize;
  const nearDoor = (i: number, j: number): boolean => {
    for (let dj = -2; dj <= 2; dj++) {
      for (let di = -2; di <= 2; di++) {
        const ii = i + di;
        const jj = j + dj;
        if (ii >= 0 && jj >= 0 && ii < cols && jj < rows && door[jj * cols + ii] === 1) return true;
      }
    }
    return false;
  };
  // Free, non-door cells next to a wall, with the direction towards that wall.
  const spots: { i: number; j: number; di: number; dj: number }[] = [];
  for (let j = 1; j < rows - 1; j++) {
    for (let i = 1; i < cols - 1; i++) {
      if (walls[j * cols + i] === 1 || nearDoor(i, j)) continue;
      for (const [di, dj] of [[1, 0], [-1, 0], [0, 1], [0, -1]] as const) {
        if (walls[(j + dj) * cols + (i + di)] === 1) spots.push({ i, j, di, dj });
      }
    }
  }
  const count = 4 + Math.floor(rng() * 5);
  const cats = shuffle(CATEGORIES.map((_, k) => k + 1), rng);
  const objects: SceneObject[] = [];
  for (let n = 0; n < count && spots.length > 0; n++) {
    // The first three are distinct categories; the rest are random (several instances allowed).
    const category = n < 3 ? (cats[n] as number) : 1 + Math.floor(rng() * CATEGORIES.length);
    const st = CATEGORY_STYLES[category - 1] as CategoryStyle;
    for (let attempt = 0; attempt < 40; attempt++) {
      const s = spots[Math.floor(rng() * spots.length)];
      if (!s) break;
      // Centre pushed against the wall, 2 cm clear of it.
      const cx = (s.i + 0.5) * cs;
      const cz = (s.j + 0.5) * cs;
      const push = cs / 2 - st.radius - 0.02;
      const x = cx + s.di * push;
      const z = cz + s.dj * push;
      if (circleHitsWall(scene, x, z, st.radius + 0.02)) continue;
      let clash = false;
      for (const o of objects) {
        const d = Math.hypot(o.x - x, o.z - z);
        if (d < o.radius + st.radius + 0.5) clash = true;
      }
      if (clash) continue;
      objects.push({ id: objects.length + 1, category, x, z, radius: st.radius, width: st.width, height: st.height });
      break;
    }
  }
  return objects;
}
