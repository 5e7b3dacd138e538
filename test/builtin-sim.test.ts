import { strict as assert } from 'node:assert';
import { isV4sError } from '../src/errors.js';
import {
  BuiltinSimulator, CATEGORIES, CATEGORY_STYLES, SUCCESS_DISTANCE, circleHitsWall, generateScene, moveAgent,
  objectViewCells, buildNavGrid, navCellCentre, renderView, wrapAngle,
  type BuiltinSimState, type Scene, type ViewPose,
} from '../src/sim-adapters/builtin/index.js';
import { geodesicDistance as geodesic } from '../src/sim-adapters/builtin/geodesic.js';
import { EVAL_SEEDS } from '../src/sim-adapters/builtin/seeds.js';

const S0 = EVAL_SEEDS.start;

function expectCode(fn: () => unknown, code: string, includes?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isV4sError(e), `expected V4sError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (includes !== undefined) assert.ok(e.message.includes(includes), `message "${e.message}" should name "${includes}"`);
    return true;
  });
}

/** Yaw that faces a point from (x, z): forward is (−sin θ, −cos θ). */
function yawTowards(x: number, z: number, tx: number, tz: number): number {
  return Math.atan2(-(tx - x), -(tz - z));
}

function stateAt(sim: BuiltinSimulator, pose: ViewPose): BuiltinSimState {
  return { ...sim.cloneState(), x: pose.x, z: pose.z, yaw: pose.yaw, done: false };
}

describe('builtin simulator: scenes and rendering', () => {
  it('is deterministic: same seed and actions give identical frame bytes; another seed differs', () => {
    const run = (seed: number): Buffer[] => {
      const sim = new BuiltinSimulator();
      const out = [Buffer.from(sim.reset({ seed }).observation.rgb.data)];
      for (const name of ['move_forward', 'turn_left', 'move_forward', 'turn_right', 'move_forward']) {
        out.push(Buffer.from(sim.step({ name }).observation.rgb.data));
      }
      return out;
    };
    const a = run(S0);
    const b = run(S0);
    const c = run(S0 + 1);
    assert.equal(a.length, 6);
    a.forEach((f, i) => assert.ok(f.equals(b[i] as Buffer), `frame ${i} differs between two runs`));
    assert.ok(!(a[0] as Buffer).equals(c[0] as Buffer));
    assert.equal((a[0] as Buffer).length, 64 * 64 * 3);
  });

  it('builds 3–5 rooms with distinct wall colours and patterns, 4–8 objects of the six categories', () => {
    assert.deepEqual([...CATEGORIES], ['chair', 'sofa', 'plant', 'bed', 'toilet', 'tv']);
    for (let seed = 0; seed < 30; seed++) {
      const sc = generateScene(seed);
      assert.ok(sc.rooms.length >= 3 && sc.rooms.length <= 5, `seed ${seed}: ${sc.rooms.length} rooms`);
      const colours = new Set(sc.rooms.map((r) => r.style.wall.join(',')));
      const patterns = new Set(sc.rooms.map((r) => r.style.pattern));
      assert.equal(colours.size, sc.rooms.length);
      assert.equal(patterns.size, sc.rooms.length);
      assert.ok(sc.objects.length >= 4 && sc.objects.length <= 8, `seed ${seed}: ${sc.objects.length} objects`);
      assert.ok(new Set(sc.objects.map((o) => o.category)).size >= 3);
      for (const o of sc.objects) assert.ok(!circleHitsWall(sc, o.x, o.z, o.radius), `seed ${seed}: object ${o.id} in a wall`);
      const w = sc.cols * sc.cellSize;
      const h = sc.rows * sc.cellSize;
      assert.ok(w >= 8 && w <= 14 && h >= 8 && h <= 14, `seed ${seed}: ${w}×${h} m`);
    }
  });

  it('renders each room in its own wall colour', () => {
    const sc = generateScene(S0);
    const seen: string[] = [];
    for (const r of sc.rooms) {
      // Stand in the room's centre looking at its −Z wall; the centre column of the wall row is that room's colour family.
      const x = ((r.i0 + r.i1 + 1) / 2) * sc.cellSize;
      const z = ((r.j0 + r.j1 + 1) / 2) * sc.cellSize;
      const v = renderView(sc, { x, z, yaw: 0 }, 64, 64);
      const hist = new Map<string, number>();
      // Dominant chromaticity of the wall band rows (28..36): colour normalised by its max channel.
      for (let y = 28; y < 36; y++) {
        for (let xx = 0; xx < 64; xx++) {
          const p = (y * 64 + xx) * 3;
          const px = [v.frame.data[p] as number, v.frame.data[p + 1] as number, v.frame.data[p + 2] as number];
          if (v.category[y * 64 + xx] !== 0) continue;
          const m = Math.max(...px, 1);
          const key = px.map((c) => Math.round((c / m) * 4)).join(',');
          hist.set(key, (hist.get(key) ?? 0) + 1);
        }
      }
      const top = [...hist.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
      const m = Math.max(...r.style.wall);
      assert.equal(top, r.style.wall.map((c) => Math.round((c / m) * 4)).join(','));
      seen.push(top);
    }
    assert.ok(new Set(seen).size >= Math.min(sc.rooms.length, 3), `rooms look alike: ${seen.join(' | ')}`);
  });

  it('masks match the frame: object pixels carry their category colour, instance ↔ category agree', () => {
    let checked = 0;
    for (let seed = S0; seed < S0 + 6; seed++) {
      const sc = generateScene(seed);
      const nav = buildNavGrid(sc, 0.18);
      for (const o of sc.objects) {
        const cells = objectViewCells(sc, nav, o.category);
        const k = cells.find((c) => {
          const [x, z] = navCellCentre(nav, c);
          return Math.hypot(x - o.x, z - o.z) > o.radius + 0.6;
        });
        if (k === undefined) continue;
        const [x, z] = navCellCentre(nav, k);
        const v = renderView(sc, { x, z, yaw: yawTowards(x, z, o.x, o.z) }, 64, 64);
        for (let p = 0; p < 64 * 64; p++) {
          const cat = v.category[p] as number;
          const inst = v.instance[p] as number;
          assert.equal(cat === 0, inst === 0, `pixel ${p}: category ${cat} but instance ${inst}`);
          if (cat === 0) continue;
          assert.equal(sc.objects[inst - 1]?.category, cat);
          const px = [v.frame.data[3 * p] as number, v.frame.data[3 * p + 1] as number, v.frame.data[3 * p + 2] as number];
          const fits = (CATEGORY_STYLES[cat - 1]?.colors ?? []).some((c) => {
            const m = c.indexOf(Math.max(...c));
            const s = (px[m] as number) / (c[m] as number);
            return s > 0 && s <= 1.001 && c.every((cc, ch) => Math.abs(cc * s - (px[ch] as number)) <= 2);
          });
          assert.ok(fits, `seed ${seed} pixel ${p}: ${px.join(',')} is not a shade of ${CATEGORIES[cat - 1]}'s colours`);
          checked++;
        }
      }
    }
    assert.ok(checked > 500, `only ${checked} object pixels checked`);
  });
});

describe('builtin simulator: agent, actions and poses', () => {
  it('three 30° left turns add 90° of yaw; the quaternion is [0, sin θ/2, 0, cos θ/2] and rotates −Z onto the heading', () => {
    const sim = new BuiltinSimulator();
    const r0 = sim.reset({ seed: S0 });
    const q0 = r0.observation.pose?.rotation ?? [0, 0, 0, 1];
    const yaw0 = 2 * Math.atan2(q0[1], q0[3]);
    let obs = r0.observation;
    for (let i = 0; i < 3; i++) obs = sim.step({ name: 'turn_left' }).observation;
    const q = obs.pose?.rotation ?? [0, 0, 0, 1];
    assert.equal(q[0], 0);
    assert.equal(q[2], 0);
    assert.ok(Math.abs(Math.hypot(...q) - 1) < 1e-12);
    const yaw = 2 * Math.atan2(q[1], q[3]);
    assert.ok(Math.abs(wrapAngle(yaw - yaw0 - Math.PI / 2)) < 1e-9, `yaw changed by ${yaw - yaw0}`);
    // Rotate (0,0,−1) by q: for a yaw quaternion that is (−sin θ, 0, −cos θ).
    const [, y, , w] = q;
    const fwd = [-2 * y * w, 0, -(w * w - y * y)];
    // Find a heading where a step is unobstructed and compare the displacement with the quaternion's forward.
    for (let k = 0; k < 12; k++) {
      const before = sim.pose ?? { x: 0, z: 0, yaw: 0 };
      const s = sim.step({ name: 'move_forward' });
      const qq = s.observation.pose?.rotation ?? [0, 0, 0, 1];
      const f = [-2 * qq[1] * qq[3], -(qq[3] * qq[3] - qq[1] * qq[1])];
      if (!s.observation.collided) {
        const p = s.observation.pose?.position ?? [0, 0, 0];
        assert.ok(Math.abs(p[0] - before.x - 0.25 * (f[0] as number)) < 1e-9);
        assert.ok(Math.abs(p[2] - before.z - 0.25 * (f[1] as number)) < 1e-9);
        assert.equal(p[1], 0);
        assert.ok(Math.abs(Math.hypot(fwd[0] as number, fwd[2] as number) - 1) < 1e-9);
        return;
      }
      sim.step({ name: 'turn_left' });
    }
    assert.fail('no free heading found');
  });

  it('collides with walls and objects: reports collided, never overlaps them, and stops adding path length', () => {
    const sc = generateScene(S0);
    const r = sc.rooms[0];
    assert.ok(r);
    const cs = sc.cellSize;
    // Face the room's −X wall (yaw +90° looks along −X) from 0.6 m away.
    let pose: ViewPose = { x: r.i0 * cs + 0.6, z: ((r.j0 + r.j1 + 1) / 2) * cs, yaw: Math.PI / 2 };
    let hits = 0;
    for (let i = 0; i < 8; i++) {
      const m = moveAgent(sc, pose, 0.25, 0.18);
      if (m.collided) hits++;
      pose = m.pose;
      assert.ok(!circleHitsWall(sc, pose.x, pose.z, 0.18));
    }
    assert.ok(hits >= 6, `collided ${hits} times`);
    assert.ok(Math.abs(pose.x - (r.i0 * cs + 0.18)) < 0.051, `stopped at x=${pose.x}, wall face at ${r.i0 * cs}`);
    // Objects block too.
    const o = sc.objects[0];
    assert.ok(o);
    const nav = buildNavGrid(sc, 0.18);
    const cell = objectViewCells(sc, nav, o.category).find((k) => {
      const [x, z] = navCellCentre(nav, k);
      return Math.hypot(x - o.x, z - o.z) > o.radius + 0.5;
    });
    assert.ok(cell !== undefined);
    const [x, z] = navCellCentre(nav, cell);
    pose = { x, z, yaw: yawTowards(x, z, o.x, o.z) };
    let collided = false;
    for (let i = 0; i < 10; i++) {
      const m = moveAgent(sc, pose, 0.25, 0.18);
      collided ||= m.collided;
      pose = m.pose;
      assert.ok(Math.hypot(pose.x - o.x, pose.z - o.z) >= o.radius + 0.18 - 1e-9);
    }
    assert.ok(collided);
    // Through the simulator: collided flag and path length.
    const sim = new BuiltinSimulator();
    sim.reset({ seed: S0, task: 'pointnav' });
    sim.restoreState({ ...stateAt(sim, { x: r.i0 * cs + 0.2, z: ((r.j0 + r.j1 + 1) / 2) * cs, yaw: Math.PI / 2 }), pathLength: 0 });
    const s = sim.step({ name: 'move_forward' });
    assert.equal(s.observation.collided, true);
    assert.ok((s.observation.info.pathLength ?? 1) < 0.03);
  });

  it('rejects unknown actions, steps before reset and after the end; truncates at the step limit', () => {
    const sim = new BuiltinSimulator({ maxSteps: { objectnav: 3 } });
    expectCode(() => sim.step({ name: 'move_forward' }), 'E_NO_EPISODE');
    sim.reset({ seed: S0 });
    expectCode(() => sim.step({ name: 'jump' }), 'E_UNKNOWN_ACTION', 'jump');
    expectCode(() => sim.step({ name: 'toString' }), 'E_UNKNOWN_ACTION', 'toString');
    assert.equal(sim.step({ name: 'turn_left' }).truncated, false);
    assert.equal(sim.step({ name: 'turn_left' }).truncated, false);
    const last = sim.step({ name: 'turn_left' });
    assert.deepEqual([last.truncated, last.terminated, last.observation.step], [true, false, 3]);
    expectCode(() => sim.step({ name: 'turn_left' }), 'E_NO_EPISODE');
    sim.reset({ seed: S0 });
    const stop = sim.step({ name: 'stop' });
    assert.deepEqual([stop.terminated, stop.truncated], [true, false]);
    expectCode(() => sim.step({ name: 'move_forward' }), 'E_NO_EPISODE');
    expectCode(() => new BuiltinSimulator().oracle({ sequences: [] }), 'E_ORACLE_DISABLED');
  });
});

describe('builtin simulator: geodesics and tasks', () => {
  it('shortest paths are finite, at least the straight line, within 2–8 m; distanceToGoal starts at ℓ', () => {
    const sim = new BuiltinSimulator();
    for (let seed = S0; seed < S0 + 15; seed++) {
      for (const task of ['pointnav', 'imagenav'] as const) {
        const r = sim.reset({ seed, task });
        const ep = sim.episode;
        assert.ok(ep?.goal);
        const l = r.observation.info.shortestPathLength ?? NaN;
        const euclid = Math.hypot(ep.start.x - ep.goal[0], ep.start.z - ep.goal[1]);
        assert.ok(Number.isFinite(l) && l >= euclid - 1e-4, `seed ${seed} ${task}: ℓ=${l} < euclid ${euclid}`);
        assert.ok(l >= 2 - 1e-6 && l <= 8 + 0.2, `seed ${seed} ${task}: ℓ=${l}`);
        assert.equal(r.observation.info.distanceToGoal, l);
        if (task === 'pointnav') assert.deepEqual(r.goal?.position, [ep.goal[0], 0, ep.goal[1]]);
        else assert.equal(r.goal?.image?.data.length, 64 * 64 * 3);
      }
      const o = sim.reset({ seed, task: 'objectnav' });
      assert.ok(CATEGORIES.includes(o.goal?.category as (typeof CATEGORIES)[number]));
      assert.ok(Number.isFinite(o.observation.info.shortestPathLength));
    }
  });

  it('a greedy follower of the geodesic field reaches PointNav goals (nav grid and physics agree)', () => {
    const sim = new BuiltinSimulator({ task: 'pointnav' });
    for (let seed = S0; seed < S0 + 5; seed++) {
      sim.reset({ seed });
      const sc = sim.scene as Scene;
      let done = false;
      let success = false;
      while (!done) {
        const pose = sim.pose as ViewPose;
        const ep = sim.episode;
        assert.ok(ep);
        const d = (p: ViewPose): number => {
          const nav = buildNavGridCached(sc);
          return geodesic(nav, ep.field, p.x, p.z);
        };
        if (d(pose) <= SUCCESS_DISTANCE.pointnav - 0.05) {
          const r = sim.step({ name: 'stop' });
          success = r.observation.info.success === true;
          break;
        }
        // Best of 12 headings one step ahead; turn towards it, else move.
        let best = 0;
        let bestD = Infinity;
        for (let k = 0; k < 12; k++) {
          const m = moveAgent(sc, { ...pose, yaw: pose.yaw + (k * Math.PI) / 6 }, 0.25, 0.18);
          const dd = d(m.pose);
          if (dd < bestD - 1e-9) {
            bestD = dd;
            best = k;
          }
        }
        const name = best === 0 ? 'move_forward' : best <= 6 ? 'turn_left' : 'turn_right';
        const r = sim.step({ name });
        done = r.terminated || r.truncated;
      }
      assert.ok(success, `seed ${seed}: greedy agent did not reach the goal`);
    }
  });

  it('success needs stop within range: PointNav 0.36 m, ImageNav 1.0 m, ObjectNav 1.0 m with the object in view', () => {
    const sim = new BuiltinSimulator();
    const tasks = ['pointnav', 'imagenav'] as const;
    for (const task of tasks) {
      // Far (the start, ≥ 2 m away): no success.
      sim.reset({ seed: S0, task });
      assert.equal(sim.step({ name: 'stop' }).observation.info.success, false);
      sim.reset({ seed: S0, task });
      const g = sim.episode?.goal ?? [0, 0];
      sim.restoreState(stateAt(sim, { x: g[0], z: g[1], yaw: 0 }));
      const r = sim.step({ name: 'stop' });
      assert.equal(r.observation.info.success, true, task);
      assert.ok((r.observation.info.distanceToGoal ?? 1) < 0.1);
    }
    // Thresholds: teleport to cells at a known geodesic distance from the goal.
    const cases: [typeof tasks[number], number, number, boolean][] = [
      ['imagenav', 0.6, 0.95, true], ['imagenav', 1.1, 1.6, false], ['pointnav', 0.15, 0.3, true], ['pointnav', 0.45, 0.9, false],
    ];
    for (const [task, lo, hi, want] of cases) {
      sim.reset({ seed: S0 + 1, task });
      const ep = sim.episode;
      const nav = buildNavGridCached(sim.scene as Scene);
      assert.ok(ep);
      const k = ep.field.findIndex((d) => d >= lo && d <= hi);
      assert.ok(k >= 0);
      const [x, z] = navCellCentre(nav, k);
      sim.restoreState(stateAt(sim, { x, z, yaw: 1 }));
      const r = sim.step({ name: 'stop' });
      const d = r.observation.info.distanceToGoal ?? NaN;
      assert.ok(d >= lo - 0.13 && d <= hi, `${task}: distanceToGoal ${d} outside [${lo}, ${hi}]`);
      assert.equal(r.observation.info.success, want, `${task} at ${d.toFixed(2)} m`);
    }
    for (let seed = S0; seed < S0 + 5; seed++) {
      sim.reset({ seed, task: 'objectnav' });
      const ep = sim.episode;
      const sc = sim.scene as Scene;
      const obj = sc.objects.find((o) => o.category === ep?.category);
      assert.ok(obj && ep);
      const nav = buildNavGridCached(sc);
      const view = objectViewCells(sc, nav, obj.category, 0.9).filter((k) => {
        const [x, z] = navCellCentre(nav, k);
        return Math.hypot(x - obj.x, z - obj.z) - obj.radius <= 0.9 && Math.hypot(x - obj.x, z - obj.z) > obj.radius + 0.4;
      });
      const k = view[0];
      assert.ok(k !== undefined, `seed ${seed}: no view cell`);
      const [x, z] = navCellCentre(nav, k);
      const facing = yawTowards(x, z, obj.x, obj.z);
      sim.restoreState(stateAt(sim, { x, z, yaw: facing }));
      const ok = sim.step({ name: 'stop' });
      assert.equal(ok.observation.info.success, true, `seed ${seed}: facing the ${CATEGORIES[obj.category - 1]} at range`);
      assert.equal(ok.observation.info.distanceToGoal, 0);
      // Same spot, looking away: not in view → no success.
      sim.reset({ seed, task: 'objectnav' });
      sim.restoreState(stateAt(sim, { x, z, yaw: facing + Math.PI }));
      const away = sim.step({ name: 'stop' });
      assert.equal(away.observation.info.success, false, `seed ${seed}: looking away`);
    }
  });
});

describe('builtin simulator: clone/restore and the oracle', () => {
  it('oracle futures equal actually stepping, do not advance the state, and restore reproduces them', () => {
    const sim = new BuiltinSimulator({ oracle: true });
    sim.reset({ seed: S0 + 3, task: 'objectnav' });
    for (const name of ['turn_left', 'move_forward', 'move_forward']) sim.step({ name });
    const snap = sim.cloneState();
    const seqs = [['move_forward', 'turn_left', 'move_forward'], ['turn_right', 'turn_right', 'move_forward', 'stop']];
    const rollouts = sim.oracle({ sequences: seqs });
    assert.deepEqual(sim.cloneState(), snap);
    const cat = sim.episode?.category ?? 0;
    for (const [i, seq] of seqs.entries()) {
      sim.restoreState(snap);
      const ro = rollouts[i];
      assert.ok(ro);
      assert.equal(ro.frames.length, seq.length);
      for (const [t, name] of seq.entries()) {
        const s = sim.step({ name });
        assert.ok(Buffer.from(s.observation.rgb.data).equals(Buffer.from(ro.frames[t]?.data ?? [])), `seq ${i} step ${t}`);
        assert.deepEqual(s.observation.pose, ro.poses[t]);
        const truth: Uint8Array = sim.currentMasks()?.category ?? new Uint8Array();
        const mask: Uint8Array = ro.masks[t] ?? new Uint8Array();
        for (let p = 0; p < mask.length; p++) assert.equal(mask[p], truth[p] === cat ? 1 : 0);
      }
    }
    // A second simulator restored from the snapshot sees the same frame.
    const other = new BuiltinSimulator({ oracle: true });
    other.reset({ seed: 1 });
    other.restoreState(snap);
    sim.restoreState(snap);
    const a = sim.oracle({ sequences: [['turn_left']], category: 'chair' })[0];
    const b = other.oracle({ sequences: [['turn_left']], category: 'chair' })[0];
    assert.ok(a && b && Buffer.from(a.frames[0]?.data ?? []).equals(Buffer.from(b.frames[0]?.data ?? [])));
    expectCode(() => sim.oracle({ sequences: [['fly']] }), 'E_UNKNOWN_ACTION', 'fly');
    expectCode(() => sim.oracle({ sequences: [[]], category: 'lamp' }), 'E_CONFIG', 'lamp');
  });
});

const navCache = new WeakMap<Scene, ReturnType<typeof buildNavGrid>>();
function buildNavGridCached(sc: Scene): ReturnType<typeof buildNavGrid> {
  let n = navCache.get(sc);
  if (!n) {
    n = buildNavGrid(sc, 0.18);
    navCache.set(sc, n);
  }
  return n;
}
