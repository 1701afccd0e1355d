// Scenario 6 — request/reply under faults: 10,000 calls through the gateway (?wait=true), among
// them callers that time out (the reply comes after the call's timeout) and callers that hang up
// before the answer. Late replies are dropped and counted, never handed to another call; the
// pending-call gauge (mq_rpc_pending_calls) returns to 0; the gateway's RSS stays flat.
import { testAmqpUrl } from '../support/broker';
import { eventually, stopAll } from '../support/processes';
import { Amqp } from './support/amqp';
import { runId, startLoad, statusSummary, type RequestSpec } from './support/load';
import {
  metricSum,
  processedLines,
  sleep,
  startGatewayProc,
  startServiceProc,
  tally,
} from './support/stack';
import { duplicatesNote, mb, recordScenario, seconds } from './support/results';

jest.setTimeout(240_000);

const CALLS = 10_000;
const RATE = 300;
/** The service answers type=slow calls after SLOW_MS. */
const SLOW_MS = 300;
const RSS_GROWTH_LIMIT = 48 * 1024 * 1024;
const RSS_FLAT_LIMIT = 16 * 1024 * 1024;
const name = `rel-rpc-${runId()}`;
let amqp: Amqp;

beforeAll(async () => {
  amqp = await Amqp.open(await testAmqpUrl());
});

afterAll(async () => {
  await stopAll();
  await amqp.deleteServiceQueues(name);
  await amqp.close();
});

/** 80 % normal calls, 10 % time out (reply after the timeout), 10 % callers hang up at 50 ms. */
function call(n: number): RequestSpec {
  const body = JSON.stringify({ n });
  const kind = n % 10;
  if (kind === 3) return { path: `/v1/${name}?wait=true&timeoutMs=100&type=slow`, body };
  if (kind === 7)
    return { path: `/v1/${name}?wait=true&timeoutMs=2000&type=slow`, body, abortAfterMs: 50 };
  return { path: `/v1/${name}?wait=true&timeoutMs=5000`, body };
}

it('10k calls with timeouts and hang-ups: late replies dropped, pending back to 0, RSS flat', async () => {
  const url = await testAmqpUrl();
  const consumer = await startServiceProc(url, name, 'rpc', {
    SERVICE_PREFETCH: '100',
    SLOW_MS: String(SLOW_MS),
    HEARTBEAT_INTERVAL_MS: '500',
  });
  const gateway = await startGatewayProc(url);
  // Calls need a live instance in the gateway's registry (heartbeats).
  await eventually(
    async () => (await (await fetch(`${gateway.baseUrl}/v1/services`)).text()).includes(name),
    20_000,
    'service in the registry',
  );

  const prefix = `r6-${runId()}`;
  const load = startLoad({
    baseUrl: gateway.baseUrl,
    rate: RATE,
    concurrency: 32,
    timeoutMs: 10_000,
    maxRequests: CALLS,
    idPrefix: prefix,
    request: call,
  });
  // RSS after every 1,000 answered calls: it may climb to a working size early, then stays flat.
  const series: [number, number][] = [];
  const seriesDone = (async () => {
    for (let k = 1000; k <= CALLS; k += 1000) {
      await eventually(() => load.stats.statusOf.size >= k, 120_000, `${k} calls`);
      series.push([k, gateway.rss()]);
    }
  })();
  await eventually(() => series.length >= 1, 120_000, '1,000 calls');
  const rssWarm = (series[0] as [number, number])[1];
  let pendingPeak = 0;
  let rssPeak = rssWarm;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      pendingPeak = Math.max(
        pendingPeak,
        metricSum(await gateway.metrics(), 'mq_rpc_pending_calls'),
      );
      rssPeak = Math.max(rssPeak, gateway.rss());
      await sleep(500);
    }
  })();
  await load.finished;
  const stats = await load.stop();
  await seriesDone;
  // RSS saw-tooths with garbage collection: compare the highest sample of each half.
  const maxOf = (from: number, to: number) =>
    Math.max(0, ...series.filter(([k]) => k > from && k <= to).map(([, r]) => r));
  const rssFirstHalf = maxOf(1000, CALLS / 2);
  const rssSecondHalf = maxOf(CALLS / 2, CALLS);
  const rssHalf = (series.find(([k]) => k === CALLS / 2) ?? [0, rssWarm])[1];
  sampling = false;
  await sampler;
  // Calls the callers left are still pending in the gateway until their reply or timeout (≤ 2 s).
  let pendingAfter = -1;
  await eventually(
    async () => (pendingAfter = metricSum(await gateway.metrics(), 'mq_rpc_pending_calls')) === 0,
    10_000,
    'mq_rpc_pending_calls back to 0',
  ).catch(() => undefined);
  await sleep(SLOW_MS + 200);
  const rssEnd = gateway.rss();
  const metrics = await gateway.metrics();
  const lateReplies = metricSum(metrics, 'mq_rpc_late_replies_total');
  const status499 = metricSum(metrics, 'gateway_http_requests_total', { status: '499' });

  const t = tally(stats.replied, processedLines([consumer.proc]));
  const expectTimeouts = Math.round(CALLS / 10);
  const checks = {
    'every call answered 200 was processed (lost = 0)': t.lost === 0,
    'no reply went to the wrong caller (200 body = request body)': stats.wrongReply === 0,
    'timed-out calls answered 504': (stats.byStatus[504] ?? 0) >= expectTimeouts * 0.9,
    'late replies dropped and counted (mq_rpc_late_replies_total > 0)': lateReplies > 0,
    'hang-ups seen by the gateway (499)': status499 > 0,
    'mq_rpc_pending_calls back to 0': pendingAfter === 0,
    'gateway RSS bounded (< 48 MB growth from 1k to 10k calls)':
      rssEnd - rssWarm < RSS_GROWTH_LIMIT,
    'gateway RSS flat (highest sample of calls 5k-10k < that of 1k-5k + 16 MB)':
      rssSecondHalf - rssFirstHalf < RSS_FLAT_LIMIT,
    'no client-side timeout or 5xx other than 504':
      stats.timeouts === 0 &&
      Object.keys(stats.byStatus).every((s) => Number(s) < 500 || s === '504'),
  };
  const failed = recordScenario(
    {
      id: 6,
      key: 'rpc-faults',
      title: 'RPC under faults',
      load: `${stats.sent} calls (?wait=true) at ≤ ${RATE}/s in ${seconds(stats.durationMs)}`,
      fault: '10 % time out (reply after the timeout), 10 % callers hang up at 50 ms',
      accepted: stats.replied.size,
      processed: t.processed,
      lost: t.lost,
      duplicates: t.duplicates,
      recovery: `pending ${pendingPeak} peak → ${pendingAfter}; RSS ${mb(rssWarm)} → ${mb(rssHalf)} → ${mb(rssEnd)} MB`,
      checks,
      notes: [
        `Answers: ${statusSummary(stats.byStatus)}. "accepted" here = calls answered 200 with the service's reply; each of those was processed.`,
        `${lateReplies} late replies (answers to calls that had timed out) were dropped by the RPC client and counted in \`mq_rpc_late_replies_total\`; no 200 carried another call's body. Calls whose caller hung up were answered into closed sockets (${status499} × 499 in \`gateway_http_requests_total\`).`,
        `\`mq_rpc_pending_calls\` peaked at ${pendingPeak} and was ${pendingAfter} after the run; gateway RSS ${mb(rssWarm)} MB after 1,000 calls, ${mb(rssHalf)} MB after 5,000, ${mb(rssEnd)} MB after ${stats.sent} (peak ${mb(rssPeak)} MB; per 1,000 calls in the figures).`,
        duplicatesNote(t.duplicates),
        `Processed but not answered 200: ${t.processedNotAccepted} (timed-out and abandoned calls the service still handled; their replies were the late ones).`,
      ],
      figures: {
        statuses: stats.byStatus,
        lateReplies,
        http499: status499,
        pendingCalls: { peak: pendingPeak, after: pendingAfter },
        gatewayRssMb: {
          after1k: mb(rssWarm),
          after5k: mb(rssHalf),
          end: mb(rssEnd),
          peak: mb(rssPeak),
        },
        gatewayRssMbPer1000Calls: series.map(([k, r]) => [k, mb(r)]),
        gatewayRssMbHighest: { calls1kTo5k: mb(rssFirstHalf), calls5kTo10k: mb(rssSecondHalf) },
        wrongReplies: stats.wrongReply,
        lostIds: t.lostIds,
      },
    },
    __filename,
  );
  expect(t.lostIds).toEqual([]);
  expect(failed).toEqual([]);
});
