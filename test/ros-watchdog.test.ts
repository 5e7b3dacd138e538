/**
 * The command watchdog and the manual clock it is tested with (fake timers: time moves only on `advance`).
 */
import assert from 'node:assert/strict';
import { CommandWatchdog, ManualClock } from '../src/sim-adapters/ros/watchdog.js';

describe('ros: ManualClock', () => {
  it('fires due timers in time order (ties in set order), including timers set while firing', () => {
    const clock = new ManualClock(100);
    const log: string[] = [];
    clock.setTimeout(() => log.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => {
      log.push(`a@${clock.now()}`);
      clock.setTimeout(() => log.push(`c@${clock.now()}`), 5);
    }, 10);
    clock.setTimeout(() => log.push(`b2@${clock.now()}`), 20);
    const late = clock.setTimeout(() => log.push('never'), 30);
    clock.clearTimeout(late);
    clock.advance(19);
    assert.deepEqual(log, ['a@110', 'c@115']);
    clock.advance(100);
    assert.deepEqual(log, ['a@110', 'c@115', 'b@120', 'b2@120']);
    assert.equal(clock.now(), 219);
    assert.equal(clock.pending, 0);
  });
});

describe('ros: CommandWatchdog', () => {
  function setup(timeoutMs = 500): { clock: ManualClock; dog: CommandWatchdog; zeros: number[] } {
    const clock = new ManualClock();
    const zeros: number[] = [];
    const dog = new CommandWatchdog({ timeoutMs, clock, onTimeout: () => zeros.push(clock.now()) });
    return { clock, dog, zeros };
  }

  it('publishes zero exactly timeoutMs after the last command, once', () => {
    const { clock, dog, zeros } = setup(500);
    dog.feed();
    assert.equal(dog.armed, true);
    assert.equal(dog.deadline, 500);
    clock.advance(499);
    assert.deepEqual(zeros, []);
    clock.advance(1);
    assert.deepEqual(zeros, [500]);
    assert.equal(dog.armed, false);
    clock.advance(5000);
    assert.deepEqual(zeros, [500]);
    assert.equal(dog.trips, 1);
  });

  it('each command restarts the countdown: fed every 400 ms it never trips; it trips 500 ms after the last', () => {
    const { clock, dog, zeros } = setup(500);
    for (let i = 0; i < 10; i++) {
      dog.feed();
      clock.advance(400);
    }
    assert.deepEqual(zeros, []);
    clock.advance(99);
    assert.deepEqual(zeros, []);
    clock.advance(1);
    assert.deepEqual(zeros, [4100]);
  });

  it('a motion of known length is guarded from its end: feed(1200) trips at 1200 + 500 ms', () => {
    const { clock, dog, zeros } = setup(500);
    dog.feed(1200);
    clock.advance(1699);
    assert.deepEqual(zeros, []);
    clock.advance(1);
    assert.deepEqual(zeros, [1700]);
  });

  it('disarm (the robot stopped on purpose) cancels it; a throwing onTimeout is counted, not thrown', () => {
    const { clock, dog, zeros } = setup(300);
    dog.feed();
    clock.advance(200);
    dog.disarm();
    clock.advance(1000);
    assert.deepEqual(zeros, []);
    const failing = new CommandWatchdog({
      timeoutMs: 10,
      clock,
      onTimeout: () => {
        throw new Error('publish failed');
      },
    });
    failing.feed();
    assert.doesNotThrow(() => clock.advance(10));
    assert.equal(failing.failures, 1);
    assert.equal(failing.trips, 1);
  });

  it('refuses a timeout that is not a positive number (E_CONFIG)', () => {
    for (const t of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new CommandWatchdog({ timeoutMs: t, onTimeout: () => undefined }), { code: 'E_CONFIG' });
    }
  });
});
