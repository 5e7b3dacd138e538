/**
 * The command watchdog of the rosbridge robot, and the small injectable clock it (and the robot's motion
 * timers) run on, so tests can move time by hand instead of waiting.
 *
 * A watchdog is a dead man's switch for motion commands: each command feeds it; when none arrives within
 * `timeoutMs` (after the end of the motion the last command asked for), it calls `onTimeout`, which publishes
 * zero velocity. It cannot help when the whole process dies or hangs: set the robot's own command timeout too
 * (docs/integrations.md, twist_mux).
 *
 * Usage:
 *   const dog = new CommandWatchdog({ timeoutMs: 500, onTimeout: () => publishZero() });
 *   dog.feed();        // a velocity command went out
 *   dog.feed(1000);    // a 1 s motion profile went out: trips 1 s + 500 ms later unless fed again or disarmed
 *   dog.disarm();      // the robot is stopped: nothing to guard
 */
import { V4sError } from '../../errors.js';

/** An opaque timer handle of a Clock. */
export type TimerHandle = NodeJS.Timeout | number;

/** Time and one-shot timers. `systemClock` in production; `ManualClock` in tests. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

/** The real clock: `performance.now()` and Node's timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => {
    if (h !== undefined) clearTimeout(h as NodeJS.Timeout);
  },
};

interface ManualTimer {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

/**
 * A clock that moves only when told (`advance`), for testing timing without waiting. Timers due at the same
 * time fire in the order they were set; a timer set by a firing timer fires in the same `advance` if due.
 */
export class ManualClock implements Clock {
  #now: number;
  #next = 1;
  #timers: ManualTimer[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#next++;
    this.#timers.push({ id, at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in time order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let due: ManualTimer | undefined;
      for (const t of this.#timers) if (t.at <= end && (due === undefined || t.at < due.at || (t.at === due.at && t.id < due.id))) due = t;
      if (due === undefined) break;
      const fire = due;
      this.#timers = this.#timers.filter((t) => t !== fire);
      this.#now = Math.max(this.#now, fire.at);
      fire.fn();
    }
    this.#now = end;
  }
}

/** Options of CommandWatchdog. */
export interface WatchdogOptions {
  /** Time without a command after which zero velocity is published, ms (> 0). */
  readonly timeoutMs: number;
  /** Publishes zero velocity. Must not throw (a throw is caught and counted in `failures`). */
  readonly onTimeout: () => void;
  readonly clock?: Clock;
}

/** A dead man's switch for velocity commands. */
export class CommandWatchdog {
  readonly timeoutMs: number;
  #clock: Clock;
  #onTimeout: () => void;
  #timer: TimerHandle | undefined;
  #deadline: number | undefined;
  #trips = 0;
  #failures = 0;

  constructor(options: WatchdogOptions) {
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new V4sError('E_CONFIG', `watchdog: timeoutMs must be a number > 0, got ${String(options.timeoutMs)}`);
    }
    this.timeoutMs = options.timeoutMs;
    this.#clock = options.clock ?? systemClock;
    this.#onTimeout = options.onTimeout;
  }

  /** A command went out; `motionMs` is how long it should keep the robot moving (0: until the next command). */
  feed(motionMs = 0): void {
    this.#clock.clearTimeout(this.#timer);
    const wait = Math.max(0, motionMs) + this.timeoutMs;
    this.#deadline = this.#clock.now() + wait;
    this.#timer = this.#clock.setTimeout(() => this.#trip(), wait);
  }

  /** The robot is stopped on purpose: nothing to guard until the next `feed`. */
  disarm(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#deadline = undefined;
  }

  /** True while a command is being guarded. */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /** When it will trip (clock time), if armed. */
  get deadline(): number | undefined {
    return this.#deadline;
  }

  /** How many times it published zero velocity. */
  get trips(): number {
    return this.#trips;
  }

  /** How many times `onTimeout` threw. */
  get failures(): number {
    return this.#failures;
  }

  #trip(): void {
    this.#timer = undefined;
    this.#deadline = undefined;
    this.#trips++;
    try {
      this.#onTimeout();
    } catch {
      this.#failures++;
    }
  }
}
