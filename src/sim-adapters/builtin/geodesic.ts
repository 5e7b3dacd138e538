/**
 * Geodesic distances on the navigation grid: the scene's occupancy at 0.125 m resolution, inflated by the agent
 * radius (a nav cell is free when an agent centred on it touches no wall and no object), 8-connected with
 * diagonal steps of √2 (no corner cutting), solved by Dijkstra.
 * Usage: `const nav = buildNavGrid(scene, 0.18); const field = distanceField(nav, [goalCell]);
 * geodesicDistance(nav, field, x, z)`.
 */
import { isFreeCircle, type Scene } from './scene.js';

/** Nav cells per scene cell along each axis. */
export const NAV_SUBDIVISION = 4;

/** The agent-radius-inflated navigation grid. Arrays are indexed `j * cols + i`. */
export interface NavGrid {
  readonly res: number;
  readonly cols: number;
  readonly rows: number;
  readonly agentRadius: number;
  /** 1 = an agent can stand at the cell's centre. */
  readonly free: Uint8Array;
  /** Connected-component label (8-connected) of free cells, −1 elsewhere. */
  readonly component: Int32Array;
  /** Label of the largest component: starts and goals are drawn from it. */
  readonly mainComponent: number;
}

/** Build the nav grid of a scene for an agent of the given radius. */
export function buildNavGrid(scene: Scene, agentRadius: number): NavGrid {
  const res = scene.cellSize / NAV_SUBDIVISION;
  const cols = scene.cols * NAV_SUBDIVISION;
  const rows = scene.rows * NAV_SUBDIVISION;
  const free = new Uint8Array(cols * rows);
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      // Scene cells that are walls cannot hold a centre: skip the circle test for speed.
      const si = Math.floor(i / NAV_SUBDIVISION);
      const sj = Math.floor(j / NAV_SUBDIVISION);
      if (scene.walls[sj * scene.cols + si] === 1) continue;
      if (isFreeCircle(scene, (i + 0.5) * res, (j + 0.5) * res, agentRadius)) free[j * cols + i] = 1;
    }
  }
  const component = new Int32Array(cols * rows).fill(-1);
  let label = 0;
  let best = -1;
  let bestSize = 0;
  const queue = new Int32Array(cols * rows);
  for (let s = 0; s < cols * rows; s++) {
    if (free[s] === 0 || component[s] !== -1) continue;
    let head = 0;
    let tail = 0;
    queue[tail++] = s;
    component[s] = label;
    while (head < tail) {
      const k = queue[head++] as number;
      forEachNeighbour(free, cols, rows, k, (nk) => {
        if (component[nk] === -1) {
          component[nk] = label;
          queue[tail++] = nk;
        }
      });
    }
    if (tail > bestSize) {
      bestSize = tail;
      best = label;
    }
    label++;
  }
  return { res, cols, rows, agentRadius, free, component, mainComponent: best };
}

const SQRT2 = Math.SQRT2;

/** Calls `fn(neighbour, cost)` for each free 8-neighbour; diagonals need both orthogonal cells free. */
function forEachNeighbour(
  free: Uint8Array,
  cols: number,
  rows: number,
  k: number,
  fn: (nk: number, cost: number) => void,
): void {
  const i = k % cols;
  const j = (k - i) / cols;
  const l = i > 0 && free[k - 1] === 1;
  const r = i < cols - 1 && free[k + 1] === 1;
  const u = j > 0 && free[k - cols] === 1;
  const d = j < rows - 1 && free[k + cols] === 1;
  if (l) fn(k - 1, 1);
  if (r) fn(k + 1, 1);
  if (u) fn(k - cols, 1);
  if (d) fn(k + cols, 1);
  if (l && u && free[k - cols - 1] === 1) fn(k - cols - 1, SQRT2);
  if (r && u && free[k - cols + 1] === 1) fn(k - cols + 1, SQRT2);
  if (l && d && free[k + cols - 1] === 1) fn(k + cols - 1, SQRT2);
  if (r && d && free[k + cols + 1] === 1) fn(k + cols + 1, SQRT2);
}

/**
 * Multi-source Dijkstra: metres from every nav cell to the nearest source cell (Infinity when unreachable).
 * Sources that are not free are ignored.
 */
export function distanceField(nav: NavGrid, sources: readonly number[]): Float32Array {
  const n = nav.cols * nav.rows;
  // Float64 while solving (a Float32 store would round and re-expand cells), Float32 in the result.
  const dist = new Float64Array(n).fill(Infinity);
  // Binary heap of (distance, cell) in parallel typed arrays; stale entries are skipped on pop.
  let cap = 1024;
  let hd = new Float64Array(cap);
  let hk = new Int32Array(cap);
  let size = 0;
  const push = (d: number, k: number): void => {
    if (size === cap) {
      cap *= 2;
      const nd = new Float64Array(cap);
      nd.set(hd);
      hd = nd;
      const nk = new Int32Array(cap);
      nk.set(hk);
      hk = nk;
    }
    let p = size++;
    while (p > 0) {
      const q = (p - 1) >> 1;
      if ((hd[q] as number) <= d) break;
      hd[p] = hd[q] as number;
      hk[p] = hk[q] as number;
      p = q;
    }
    hd[p] = d;
    hk[p] = k;
  };
  const pop = (): void => {
    const d = hd[--size] as number;
    const k = hk[size] as number;
    let p = 0;
    for (;;) {
      let c = 2 * p + 1;
      if (c >= size) break;
      if (c + 1 < size && (hd[c + 1] as number) < (hd[c] as number)) c++;
      if ((hd[c] as number) >= d) break;
      hd[p] = hd[c] as number;
      hk[p] = hk[c] as number;
      p = c;
    }
    hd[p] = d;
    hk[p] = k;
  };
  for (const s of sources) {
    if (nav.free[s] !== 1 || (dist[s] as number) === 0) continue;
    dist[s] = 0;
    push(0, s);
  }
  const res = nav.res;
  while (size > 0) {
    const d = hd[0] as number;
    const k = hk[0] as number;
    pop();
    if (d > (dist[k] as number)) continue;
    forEachNeighbour(nav.free, nav.cols, nav.rows, k, (nk, cost) => {
      const nd = d + cost * res;
      if (nd < (dist[nk] as number)) {
        dist[nk] = nd;
        push(nd, nk);
      }
    });
  }
  return Float32Array.from(dist);
}

/** Nav cell index containing world point (x, z), or −1 outside the grid. */
export function navCellAt(nav: NavGrid, x: number, z: number): number {
  const i = Math.floor(x / nav.res);
  const j = Math.floor(z / nav.res);
  if (i < 0 || j < 0 || i >= nav.cols || j >= nav.rows) return -1;
  return j * nav.cols + i;
}

/** World centre [x, z] of a nav cell. */
export function navCellCentre(nav: NavGrid, k: number): [number, number] {
  const i = k % nav.cols;
  const j = (k - i) / nav.cols;
  return [(i + 0.5) * nav.res, (j + 0.5) * nav.res];
}

/**
 * Geodesic distance (metres) from a continuous point to the field's sources: the minimum over free nav cells
 * within two cells of `field[cell] + |point − centre(cell)|`. Never below the straight-line distance when the
 * sources are single points at cell centres. Infinity when unreachable.
 */
export function geodesicDistance(nav: NavGrid, field: Float32Array, x: number, z: number): number {
  const ci = Math.floor(x / nav.res);
  const cj = Math.floor(z / nav.res);
  let best = Infinity;
  for (let j = cj - 2; j <= cj + 2; j++) {
    if (j < 0 || j >= nav.rows) continue;
    for (let i = ci - 2; i <= ci + 2; i++) {
      if (i < 0 || i >= nav.cols) continue;
      const f = field[j * nav.cols + i] as number;
      if (f === Infinity) continue;
      const d = f + Math.hypot(x - (i + 0.5) * nav.res, z - (j + 0.5) * nav.res);
      if (d < best) best = d;
    }
  }
  return best;
}
