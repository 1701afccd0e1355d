// Time in tests: TEST_TIME_SCALE (one factor for every upper time limit), sleep, and the one poller.

// eslint-disable-next-line @typescript-eslint/no-require-imports
const timeScale = require('./time-scale.js') as {
  parseTimeScale(raw: string | undefined): number;
  TIME_SCALE: number;
  scaled(ms: number): number;
};

/** Reads a TEST_TIME_SCALE value: unset or empty is 1; otherwise a positive number. */
export const parseTimeScale = timeScale.parseTimeScale;

/** The factor every upper time limit of the tests is multiplied by (TEST_TIME_SCALE, default 1). */
export const TIME_SCALE = timeScale.TIME_SCALE;

/**
 * An upper time limit, in ms, times TEST_TIME_SCALE: for a test's own limits (how long something
 * may take, a jest timeout, a timeout passed to a process or a client). Lower limits and pacing
 * are not scaled.
 */
export const scaled = timeScale.scaled;

/** Resolves after `ms` (0 for a negative value). Not scaled: a pause, not a limit. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export interface EventuallyOptions<T> {
  /** Done once this holds for the value `check` returned (default: the value is truthy). */
  until?: (value: T) => boolean;
  /** Pause between two checks (default 50 ms). */
  intervalMs?: number;
  /**
   * A check that throws is tried again (its last error is reported on timeout) instead of failing
   * at once (default false).
   */
  retryErrors?: boolean;
}

/**
 * Calls `check` until it holds (its value is truthy, or `options.until` says so), at most
 * `timeoutMs` × TEST_TIME_SCALE; resolves with the value that held. On timeout it rejects with
 * `what`, the last value and the last error.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 20_000,
  what = 'condition',
  options: EventuallyOptions<T> = {},
): Promise<T> {
  const { until = (value: T) => Boolean(value), intervalMs = 50, retryErrors = false } = options;
  const limitMs = scaled(timeoutMs);
  const deadline = Date.now() + limitMs;
  let last: { value: T } | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (until(value)) return value;
      last = { value };
    } catch (err) {
      if (!retryErrors) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(intervalMs, deadline - Date.now()));
  }
  const seen =
    last === undefined || typeof last.value === 'boolean'
      ? ''
      : `; last value: ${String(JSON.stringify(last.value)).slice(0, 1500)}`;
  const error = lastError === undefined ? '' : `; last error: ${String(lastError)}`;
  throw new Error(`timed out after ${limitMs} ms waiting for ${what}${seen}${error}`);
}
