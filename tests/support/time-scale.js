// TEST_TIME_SCALE, read once for the tests and for the jest configs: the factor every upper time
// limit is multiplied by (jest's timeouts, the waits of tests/support/time.ts, a test's own limits).
'use strict';

/**
 * Unset or empty is 1; otherwise a positive number (2 on a slow or loaded machine doubles every
 * limit, 0.5 halves them).
 * @param {string | undefined} raw
 * @returns {number}
 */
function parseTimeScale(raw) {
  if (raw === undefined || raw.trim() === '') return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale <= 0)
    throw new Error(`TEST_TIME_SCALE must be a positive number (got "${raw}")`);
  return scale;
}

const TIME_SCALE = parseTimeScale(process.env.TEST_TIME_SCALE);

/**
 * An upper time limit in ms, times TEST_TIME_SCALE.
 * @param {number} ms
 * @returns {number}
 */
const scaled = (ms) => Math.ceil(ms * TIME_SCALE);

module.exports = { parseTimeScale, TIME_SCALE, scaled };
