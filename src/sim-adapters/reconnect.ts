/**
 * Reconnecting with back-off: exponential delays between tries, capped, with jitter so that many agents that
 * lost the same simulator do not all knock again at the same instant. `connectSimulator(url, { reconnect })`
 * uses it; so can any other "open a connection" function.
 *
 * Only transient failures are retried: the peer unreachable (`E_CONNECT`), the connection closed or timed out
 * during the handshake (`E_CLOSED`, `E_TIMEOUT`), the server full (`E_TOO_MANY_CONNECTIONS`). A refusal that
 * will not change by waiting (wrong token `E_AUTH`, another protocol version, a bad option) fails at once.
 *
 * Usage:
 *   const env = await connectSimulator('ws://127.0.0.1:8765', { reconnect: { tries: 10, baseDelayMs: 200, maxDelayMs: 5000 } });
 *   // or, around any connect function:
 *   const env = await retryWithBackoff(() => connectSimulator(url), { tries: 10 });
 */
import { V4sError, isV4sError, type V4sErrorCode } from '../errors.js';

/** How to retry a connection that fails for a transient reason. */
export interface ReconnectOptions {
  /** Attempts in all, the first included (default 5; 1 = no retry). */
  readonly tries?: number;
  /** Delay before the second attempt, ms (default 250); each later delay doubles. */
  readonly baseDelayMs?: number;
  /** Largest delay between two attempts, ms (default 5000). */
  readonly maxDelayMs?: number;
  /**
   * Fraction of each delay drawn at random (default 0.5): the delay is uniform in [d·(1 − jitter), d], where
   * d = min(maxDelayMs, baseDelayMs · 2^(attempt−1)). 0 gives the exact exponential schedule.
   */
  readonly jitter?: number;
  /** Stops waiting: the pending delay ends at once and the call rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
  /** Called before each wait, e.g. to log "simulator unreachable, retrying in 400 ms (try 2 of 10)". */
  readonly onRetry?: (info: RetryInfo) => void;
  /** Source of randomness for the jitter, in [0, 1) (default Math.random; tests pass a fixed one). */
  readonly random?: () => number;
}

/** What `onRetry` is told. */
export interface RetryInfo {
  /** The attempt that just failed, 1-based. */
  readonly attempt: number;
  readonly tries: number;
  /** The wait before the next attempt, ms. */
  readonly delayMs: number;
  readonly error: V4sError;
}

/** Failure codes worth another try (the peer may come back or free a slot). */
export const RETRYABLE_CODES: readonly V4sErrorCode[] = ['E_CONNECT', 'E_CLOSED', 'E_TIMEOUT', 'E_TOO_MANY_CONNECTIONS'];

/** True when `e` is a V4sError whose code is in RETRYABLE_CODES. */
export function isRetryable(e: unknown): boolean {
  return isV4sError(e) && RETRYABLE_CODES.includes(e.code);
}

interface ResolvedReconnect {
  readonly tries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly jitter: number;
}

/** Checks and fills in the options; E_CONFIG naming the bad one. */
export function resolveReconnectOptions(o: ReconnectOptions = {}): ResolvedReconnect {
  const int = (name: string, v: number | undefined, min: number, max: number, def: number): number => {
    const x = v ?? def;
    if (!Number.isInteger(x) || x < min || x > max) throw new V4sError('E_CONFIG', `reconnect.${name} must be an integer in ${min}…${max}, got ${String(v)}`);
    return x;
  };
  const tries = int('tries', o.tries, 1, 1_000_000, 5);
  const baseDelayMs = int('baseDelayMs', o.baseDelayMs, 0, 3_600_000, 250);
  const maxDelayMs = int('maxDelayMs', o.maxDelayMs, 0, 3_600_000, 5000);
  if (maxDelayMs < baseDelayMs) throw new V4sError('E_CONFIG', `reconnect.maxDelayMs (${maxDelayMs}) is below reconnect.baseDelayMs (${baseDelayMs})`);
  const jitter = o.jitter ?? 0.5;
  if (!(jitter >= 0 && jitter <= 1)) throw new V4sError('E_CONFIG', `reconnect.jitter must be a number in 0…1, got ${String(o.jitter)}`);
  return { tries, baseDelayMs, maxDelayMs, jitter };
}

/**
 * The wait after failed attempt `attempt` (1-based): min(maxDelayMs, baseDelayMs · 2^(attempt−1)), of which
 * the fraction `jitter` is drawn from `random()`. Always within [d·(1 − jitter), d].
 */
export function backoffDelay(attempt: number, options: ReconnectOptions = {}, random: () => number = Math.random): number {
  const { baseDelayMs, maxDelayMs, jitter } = resolveReconnectOptions(options);
  const exp = Math.min(Math.max(0, attempt - 1), 52); // 2^52 · base is far past any cap; avoids Infinity
  const d = Math.min(maxDelayMs, baseDelayMs * 2 ** exp);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(d * (1 - jitter * r));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Calls `attempt` until it resolves, retrying transient failures (`isRetryable`) after back-off delays, up to
 * `tries` attempts. Rejects at once with a non-retryable error; after the last try, with the last error's
 * code and a message that says how many tries were made over how long; with `signal.reason` when aborted.
 */
export async function retryWithBackoff<T>(attempt: () => Promise<T>, options: ReconnectOptions = {}): Promise<T> {
  const o = resolveReconnectOptions(options);
  const random = options.random ?? Math.random;
  const signal = options.signal;
  const t0 = performance.now();
  for (let n = 1; ; n++) {
    signal?.throwIfAborted();
    try {
      return await attempt();
    } catch (e) {
      if (signal?.aborted === true) throw signal.reason;
      if (!isRetryable(e) || !isV4sError(e)) throw e;
      if (n >= o.tries) {
        if (o.tries === 1) throw e;
        const secs = ((performance.now() - t0) / 1000).toFixed(1);
        throw new V4sError(e.code, `${e.message} (gave up after ${n} tries over ${secs} s)`, { ...e.details, tries: n }, { cause: e });
      }
      const delayMs = backoffDelay(n, o, random);
      options.onRetry?.({ attempt: n, tries: o.tries, delayMs, error: e });
      await sleep(delayMs, signal);
    }
  }
}
