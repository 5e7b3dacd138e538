/**
 * Ray-casting renderer of built-in scenes: one DDA ray per column against the wall grid, floor and ceiling cast
 * per row, objects as camera-facing billboards with per-category silhouettes, depth-tested per column against
 * the walls and painted far to near. Everything is shaded by distance (no noise), so frames are clean training
 * data at 64×64. Alongside the RGB frame come per-pixel category ids and instance ids.
 * Usage: `const { frame, category, instance } = renderView(scene, { x, z, yaw }, 64, 64)`.
 */
import type { Frame } from '../../types.js';
import { CAMERA_HEIGHT, CATEGORY_STYLES, WALL_HEIGHT, type CategoryStyle, type RGB, type Scene, type SceneObject } from './scene.js';

/** Agent pose on the floor plane: metres, yaw in radians (0 looks along −Z, positive turns left). */
export interface ViewPose {
  readonly x: number;
  readonly z: number;
  readonly yaw: number;
}

/** A rendered view: RGB frame, category id per pixel (0 none), instance id per pixel (0 none), depth per column. */
export interface RenderedView {
  readonly frame: Frame;
  readonly category: Uint8Array;
  readonly instance: Uint16Array;
  /** Perpendicular wall distance per column, metres. */
  readonly depth: Float32Array;
}

export interface RenderOptions {
  /** Horizontal field of view in degrees (default 90). */
  readonly hfov?: number;
  /** Buffers to render into (must match width × height); new ones are allocated otherwise. */
  readonly into?: RenderedView;
}

const FOG = 0.12;

/** Brightness factor at a distance (metres). */
function shadeAt(d: number): number {
  return 1 / (1 + FOG * d);
}

/** Allocate buffers for a view of the given size. */
export function allocateView(width: number, height: number): RenderedView {
  return {
    frame: { width, height, data: new Uint8Array(width * height * 3) },
    category: new Uint8Array(width * height),
    instance: new Uint16Array(width * height),
    depth: new Float32Array(width),
  };
}

/**
 * Silhouette of a category on its billboard: `s` ∈ [−1, 1] across, `h` ∈ [0, 1] up from the floor.
 * Returns the colour index + 1 (0 = transparent).
 */
export function silhouette(category: number, s: number, h: number): number {
  const a = s < 0 ? -s : s;
  switch (category) {
    case 1: // chair: legs, seat, framed back
      if (h < 0.45) return a > 0.68 && a < 0.9 ? 2 : 0;
      if (h < 0.55) return a < 0.95 ? 1 : 0;
      if (a > 0.82) return 0;
      return h > 0.9 || a > 0.62 ? 2 : 1;
    case 2: // sofa: feet, body, arms + cushions, back
      if (h < 0.12) return a > 0.82 ? 1 : 0;
      if (h < 0.5) return 1;
      if (h < 0.75) return a > 0.8 ? 1 : 2;
      return a < 0.78 ? 1 : 0;
    case 3: { // plant: tapered pot, round foliage
      if (h < 0.3) return a < 0.3 + 0.2 * (h / 0.3) ? 2 : 0;
      const e = (h - 0.66) / 0.36;
      return s * s + e * e < 1 ? 1 : 0;
    }
    case 4: // bed: headboard on the left, pillow, sheet, blanket, legs
      if (s < -0.8) return 3;
      if (h < 0.12) return a > 0.86 ? 3 : 0;
      if (h < 0.4) return 2;
      if (h < 0.55) return 1;
      return s < -0.45 && h < 0.72 ? 1 : 0;
    case 5: // toilet: tapered bowl, grey seat rim, tank with lid
      if (h < 0.5) return a < 0.45 + 0.4 * (h / 0.5) ? 1 : 0;
      if (h < 0.6) return a < 0.9 ? 2 : 0;
      if (a > 0.7) return 0;
      return h > 0.93 ? 2 : 1;
    case 6: // tv: foot, stem, framed screen
      if (h < 0.05) return a < 0.5 ? 1 : 0;
      if (h < 0.4) return a < 0.12 ? 1 : 0;
      return h < 0.45 || h > 0.96 || a > 0.92 ? 1 : 2;
    default:
      return 0;
  }
}

/**
 * Render a view of a scene. Wall patterns, floor tiles and objects are functions of world coordinates, so a
 * camera that turns or moves sees a consistent world.
 */
export function renderView(scene: Scene, pose: ViewPose, width: number, height: number, options: RenderOptions = {}): RenderedView {
  const out = options.into ?? allocateView(width, height);
  const data = out.frame.data;
  const catBuf = out.category;
  const instBuf = out.instance;
  const depth = out.depth;
  catBuf.fill(0);
  instBuf.fill(0);
  const hfov = ((options.hfov ?? 90) * Math.PI) / 180;
  const focal = width / 2 / Math.tan(hfov / 2);
  const horizon = height / 2;
  const cs = scene.cellSize;
  const cols = scene.cols;
  const rows = scene.rows;
  const walls = scene.walls;
  const roomOf = scene.room;
  const rooms = scene.rooms;
  const fx = -Math.sin(pose.yaw);
  const fz = -Math.cos(pose.yaw);
  const rx = Math.cos(pose.yaw);
  const rz = -Math.sin(pose.yaw);
  const px = pose.x / cs;
  const pz = pose.z / cs;
  const above = WALL_HEIGHT - CAMERA_HEIGHT;

  // Per-row floor/ceiling distance and shade.
  const rowDist = new Float32Array(height);
  const rowShade = new Float32Array(height);
  for (let y = 0; y < height; y++) {
    const ty = (y + 0.5 - horizon) / focal;
    const d = ty > 0 ? CAMERA_HEIGHT / ty : ty < 0 ? above / -ty : 1e6;
    rowDist[y] = d;
    rowShade[y] = shadeAt(d);
  }

  for (let col = 0; col < width; col++) {
    const t = (col + 0.5 - width / 2) / focal;
    const dx = fx + rx * t;
    const dz = fz + rz * t;
    // DDA in grid units.
    let mx = Math.floor(px);
    let mz = Math.floor(pz);
    const ddx = dx === 0 ? 1e30 : Math.abs(1 / dx);
    const ddz = dz === 0 ? 1e30 : Math.abs(1 / dz);
    const sx = dx < 0 ? -1 : 1;
    const sz = dz < 0 ? -1 : 1;
    let sdx = dx < 0 ? (px - mx) * ddx : (mx + 1 - px) * ddx;
    let sdz = dz < 0 ? (pz - mz) * ddz : (mz + 1 - pz) * ddz;
    let side = 0;
    let guard = cols + rows + 4;
    for (;;) {
      if (sdx < sdz) {
        sdx += ddx;
        mx += sx;
        side = 0;
      } else {
        sdz += ddz;
        mz += sz;
        side = 1;
      }
      if (mx < 0 || mz < 0 || mx >= cols || mz >= rows || walls[mz * cols + mx] === 1 || --guard === 0) break;
    }
    const perp = Math.max(1e-4, (side === 0 ? sdx - ddx : sdz - ddz) * cs);
    depth[col] = perp;
    // Coordinate along the wall (metres) and the room on the viewer's side of the face.
    const u = side === 0 ? pose.z + perp * dz : pose.x + perp * dx;
    const fi = side === 0 ? mx - sx : mx;
    const fj = side === 0 ? mz : mz - sz;
    const inside = fi >= 0 && fj >= 0 && fi < cols && fj < rows;
    const colRoom = inside ? Math.max(0, roomOf[fj * cols + fi] as number) : 0;
    const style = (rooms[colRoom] ?? rooms[0])?.style;
    if (!style) continue;
    const wShade = shadeAt(perp) * (side === 0 ? 1 : 0.8);
    const w0 = style.wall;
    const w1 = style.wallAlt;
    const pattern = style.pattern;
    const yTop = horizon - (above * focal) / perp;
    const yBot = horizon + (CAMERA_HEIGHT * focal) / perp;
    const hPerPx = perp / focal;
    for (let y = 0; y < height; y++) {
      const yc = y + 0.5;
      const p = (y * width + col) * 3;
      if (yc < yTop) {
        const d = rowDist[y] as number;
        const ci = Math.floor((pose.x + dx * d) / cs);
        const cj = Math.floor((pose.z + dz * d) / cs);
        let c = style.ceiling;
        if (ci >= 0 && cj >= 0 && ci < cols && cj < rows) {
          const r = roomOf[cj * cols + ci] as number;
          if (r >= 0) c = (rooms[r] ?? rooms[0])?.style.ceiling ?? c;
        }
        const k = rowShade[y] as number;
        data[p] = c[0] * k;
        data[p + 1] = c[1] * k;
        data[p + 2] = c[2] * k;
      } else if (yc < yBot) {
        const h = CAMERA_HEIGHT - (yc - horizon) * hPerPx;
        let alt = false;
        let k = wShade;
        if (h < 0.12) {
          k *= 0.45; // baseboard
        } else {
          switch (pattern) {
            case 1: alt = (Math.floor(u / 0.25) & 1) === 1; break;
            case 2: alt = (Math.floor(h / 0.3) & 1) === 1; break;
            case 3: {
              const row = Math.floor(h / 0.25);
              const uu = u / 0.5 + (row & 1) * 0.5;
              alt = uu - Math.floor(uu) < 0.1 || h / 0.25 - row < 0.14;
              break;
            }
            case 4: alt = ((Math.floor(u / 0.5) + Math.floor(h / 0.5)) & 1) === 1; break;
            case 5: alt = (Math.floor((u + h) / 0.35) & 1) === 1; break;
            case 6: k *= 0.55 + 0.45 * (h / WALL_HEIGHT); break;
            default: alt = h > 0.9 && h < 1.0; break; // plain with a dado rail
          }
        }
        const c = alt ? w1 : w0;
        data[p] = c[0] * k;
        data[p + 1] = c[1] * k;
        data[p + 2] = c[2] * k;
      } else {
        const d = rowDist[y] as number;
        const wx = pose.x + dx * d;
        const wz = pose.z + dz * d;
        const ci = Math.floor(wx / cs);
        const cj = Math.floor(wz / cs);
        let fs = style;
        if (ci >= 0 && cj >= 0 && ci < cols && cj < rows) {
          const r = roomOf[cj * cols + ci] as number;
          if (r >= 0) fs = (rooms[r] ?? rooms[0])?.style ?? style;
        }
        const c = ((ci + cj) & 1) === 1 ? fs.floorAlt : fs.floor;
        const k = rowShade[y] as number;
        data[p] = c[0] * k;
        data[p + 1] = c[1] * k;
        data[p + 2] = c[2] * k;
      }
    }
  }

  // Objects: billboards, far to near, depth-tested per column against walls.
  const visible: { o: SceneObject; d: number; lat: number }[] = [];
  for (const o of scene.objects) {
    const ox = o.x - pose.x;
    const oz = o.z - pose.z;
    const d = ox * fx + oz * fz;
    if (d < 0.1) continue;
    visible.push({ o, d, lat: ox * rx + oz * rz });
  }
  visible.sort((a, b) => b.d - a.d);
  for (const { o, d, lat } of visible) {
    const st = CATEGORY_STYLES[o.category - 1] as CategoryStyle;
    const scx = width / 2 + (lat / d) * focal;
    const half = ((o.width / 2) * focal) / d;
    const x0 = Math.max(0, Math.ceil(scx - half - 0.5));
    const x1 = Math.min(width - 1, Math.floor(scx + half - 0.5));
    if (x1 < x0) continue;
    const yTopO = horizon + ((CAMERA_HEIGHT - o.height) * focal) / d;
    const yBotO = horizon + (CAMERA_HEIGHT * focal) / d;
    const y0 = Math.max(0, Math.ceil(yTopO - 0.5));
    const y1 = Math.min(height - 1, Math.floor(yBotO - 0.5));
    const k = shadeAt(d);
    const colors = st.colors;
    const span = yBotO - yTopO;
    for (let col = x0; col <= x1; col++) {
      if (d >= (depth[col] as number)) continue;
      const s = (col + 0.5 - scx) / half;
      for (let y = y0; y <= y1; y++) {
        const idx = silhouette(o.category, s, (yBotO - (y + 0.5)) / span);
        if (idx === 0) continue;
        const c = colors[idx - 1] as RGB;
        const pix = y * width + col;
        const p = pix * 3;
        data[p] = c[0] * k;
        data[p + 1] = c[1] * k;
        data[p + 2] = c[2] * k;
        catBuf[pix] = o.category;
        instBuf[pix] = o.id;
      }
    }
  }
  return out;
}

/** Perpendicular distance (metres) to the wall straight ahead of a pose. */
export function wallDistanceAhead(scene: Scene, pose: ViewPose): number {
  const cs = scene.cellSize;
  const dx = -Math.sin(pose.yaw);
  const dz = -Math.cos(pose.yaw);
  const px = pose.x / cs;
  const pz = pose.z / cs;
  let mx = Math.floor(px);
  let mz = Math.floor(pz);
  const ddx = dx === 0 ? 1e30 : Math.abs(1 / dx);
  const ddz = dz === 0 ? 1e30 : Math.abs(1 / dz);
  const sx = dx < 0 ? -1 : 1;
  const sz = dz < 0 ? -1 : 1;
  let sdx = dx < 0 ? (px - mx) * ddx : (mx + 1 - px) * ddx;
  let sdz = dz < 0 ? (pz - mz) * ddz : (mz + 1 - pz) * ddz;
  let side = 0;
  for (let guard = 0; guard < scene.cols + scene.rows + 4; guard++) {
    if (sdx < sdz) {
      sdx += ddx;
      mx += sx;
      side = 0;
    } else {
      sdz += ddz;
      mz += sz;
      side = 1;
    }
    if (mx < 0 || mz < 0 || mx >= scene.cols || mz >= scene.rows || scene.walls[mz * scene.cols + mx] === 1) break;
  }
  return (side === 0 ? sdx - ddx : sdz - ddz) * cs;
}
