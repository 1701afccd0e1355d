// Scenario 5 — backpressure: a slow consumer behind a bounded queue (x-max-length, overflow
// reject-publish, set in the service's definition) and a producer several times faster. The broker
// nacks what does not fit, the gateway answers 429 + Retry-After, the queue stays at its bound and
// the gateway's memory does not grow with the refused load; everything accepted is processed.
import { testAmqpUrl } from '../support/broker';
import { scenarioBroker } from './support/amqp';
import { runId, startLoad, statusSummary } from './support/load';
import { startGatewayProc, startServiceProc, waitProcessed } from './support/stack';
import { duplicatesNote, mb, recordScenario, seconds } from './support/results';
import { metricSum } from '../support/prom-text';
import { sleep, scaled } from '../support/time';

jest.setTimeout(scaled(150_000));

const RATE = 300;
const DURATION_MS = 12_000;
const MAX_LENGTH = 100;
/** Prefetch 2 × 50 ms: the consumer does ~40 messages/s, a seventh of the offered load. */
const HANDLER_MS = 50;
const PREFETCH = 2;
/** RSS growth allowed over the run (V8 heap settling, sockets, histograms), far below the refused load. */
const RSS_GROWTH_LIMIT = 96 * 1024 * 1024;
/** RSS is also read after SETTLE_MS of pressure (heap and buffers at their working size). */
const SETTLE_MS = 4000;
/** A refused request is answered at once: nothing waits in the gateway for room in the queue. */
const ANSWER_LIMIT_MS = 3000;
const name = `rel-bp-${runId()}`;
const amqp = scenarioBroker(name);

it('bounds the queue: 429 + Retry-After when full, gateway memory flat, zero lost', async () => {
  const url = await testAmqpUrl();
  const consumer = await startServiceProc(url, name, 'slow', {
    HANDLER_MS: String(HANDLER_MS),
    SERVICE_PREFETCH: String(PREFETCH),
    MAX_LENGTH: String(MAX_LENGTH),
  });
  const gateway = await startGatewayProc(url);
  // Warm the gateway up (JIT, sockets, metric children) before the "before" figure.
  const warm = startLoad({
    baseUrl: gateway.baseUrl,
    rate: 40,
    concurrency: 4,
    timeoutMs: 8000,
    maxRequests: 80,
    idPrefix: `r5w-${runId()}`,
    request: (n) => ({ path: `/v1/${name}`, body: JSON.stringify({ n }) }),
  });
  await warm.finished;
  const warmStats = await warm.stop();
  await waitProcessed(warmStats.accepted, () => [consumer.proc], 20_000);
  const rssBefore = gateway.rss();

  let maxDepth = 0;
  let rssPeak = rssBefore;
  /** Highest RSS during the first SETTLE_MS of pressure, and after (RSS saw-tooths with GC). */
  const phasePeak = [0, 0];
  let phase = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxDepth = Math.max(maxDepth, (await amqp().depth(name)) ?? 0);
      const rss = gateway.rss();
      rssPeak = Math.max(rssPeak, rss);
      phasePeak[phase] = Math.max(phasePeak[phase] ?? 0, rss);
      await sleep(200);
    }
  })();
  const body = JSON.stringify({ pad: 'x'.repeat(512) });
  const load = startLoad({
    baseUrl: gateway.baseUrl,
    rate: RATE,
    concurrency: 24,
    timeoutMs: 8000,
    idPrefix: `r5-${runId()}`,
    request: () => ({ path: `/v1/${name}`, body }),
  });
  // RSS once the pressure has lasted a while (buffers and heap at their working size), then at the end.
  await sleep(SETTLE_MS);
  const rssSettled = gateway.rss();
  phase = 1;
  await sleep(DURATION_MS - SETTLE_MS);
  const stats = await load.stop();
  sampling = false;
  await sampler;
  const rssAfter = gateway.rss();
  const t = await waitProcessed(stats.accepted, () => [consumer.proc], 60_000);
  const metrics = await gateway.metrics();
  const nacked = metricSum(metrics, 'gateway_published_messages_total', {
    service: name,
    outcome: 'nacked',
  });
  const refused = (stats.byStatus[429] ?? 0) + (stats.byStatus[503] ?? 0);
  const other = Object.keys(stats.byStatus).filter((s) => !['202', '429', '503'].includes(s));

  const checks = {
    'accepted-but-never-processed = 0': t.lost === 0,
    'the gateway refused the overflow with 429': (stats.byStatus[429] ?? 0) > 0,
    'every 429/503 carries Retry-After': stats.missingRetryAfter === 0,
    'only 202, 429 or 503 answers (no timeouts, no 5xx other than 503)': other.length === 0,
    [`queue depth stayed ≤ x-max-length (${MAX_LENGTH})`]: maxDepth <= MAX_LENGTH,
    'gateway memory bounded (peak RSS < start + 96 MB)': rssPeak - rssBefore < RSS_GROWTH_LIMIT,
    'nothing held in the gateway: every answer within 3 s': stats.maxLatencyMs < ANSWER_LIMIT_MS,
    'every 429 was a broker nack (gateway_published_messages_total{outcome="nacked"})':
      nacked === (stats.byStatus[429] ?? 0),
  };
  const failed = recordScenario(
    {
      id: 5,
      key: 'backpressure',
      title: 'Backpressure (bounded queue)',
      load: `${RATE} req/s × ${seconds(stats.durationMs)} (${stats.sent} requests) into a ~40 msg/s consumer`,
      fault: `x-max-length ${MAX_LENGTH}, overflow reject-publish (the service's definition)`,
      accepted: t.accepted,
      processed: t.processed,
      lost: t.lost,
      duplicates: t.duplicates,
      recovery: `RSS ${mb(rssBefore)} → ${mb(rssSettled)} → ${mb(rssAfter)} MB`,
      checks,
      notes: [
        `Answers: ${statusSummary(stats.byStatus)}; ${refused} refused with Retry-After (429 = the broker nacked the publish because the queue was full; the client is told to retry in 1 s).`,
        `The queue never held more than ${maxDepth} ready messages (bound ${MAX_LENGTH}), so neither the broker nor the gateway buffered the excess: the gateway's RSS was ${mb(rssBefore)} MB before the load, ${mb(rssSettled)} MB after ${seconds(SETTLE_MS)} of it and ${mb(rssAfter)} MB at the end (peak ${mb(rssPeak)} MB) while it refused ${refused} requests (the recovery column: before → settled → end). Every answer came within ${stats.maxLatencyMs} ms: a refused request is answered, not parked.`,
        duplicatesNote(t.duplicates),
      ],
      figures: {
        statuses: stats.byStatus,
        maxQueueDepth: maxDepth,
        nackedPublishes: nacked,
        gatewayRssMb: {
          before: mb(rssBefore),
          settled: mb(rssSettled),
          after: mb(rssAfter),
          peak: mb(rssPeak),
          highestWhileSettling: mb(phasePeak[0] ?? 0),
          highestSettled: mb(phasePeak[1] ?? 0),
        },
        maxLatencyMs: stats.maxLatencyMs,
        lostIds: t.lostIds,
      },
    },
    __filename,
  );
  expect(t.lostIds).toEqual([]);
  expect(failed).toEqual([]);
});
