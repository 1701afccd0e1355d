// Scenario 6 — request/reply under faults: 10,000 calls through the gateway (?wait=true), among
// them callers that time out (the reply comes after the call's timeout) and callers that hang up
// before the answer. Late replies are dropped and counted, never handed to another call; the
// pending-call gauge (mq_rpc_pending_calls) returns to 0; the gateway's RSS stays flat.
import { testAmqpUrl } from '../support/broker';
import { eventually, sleep, scaled } from '../support/time';
import { scenarioBroker } from './support/amqp';
import { runId, startLoad, statusSummary, type RequestSpec } from './support/load';
import { processedLines, startGatewayProc, startServiceProc, tally } from './support/stack';
import { duplicatesNote, mb, recordScenario, seconds } from './support/results';
import { LiveHeap } from './support/heap';
import { metricSum } from '../support/prom-text';

jest.setTimeout(scaled(240_000));

const CALLS = 10_000;
const RATE = 300;
/** The service answers type=slow calls after SLOW_MS. */
const SLOW_MS = 300;
const RSS_GROWTH_LIMIT = 48 * 1024 * 1024;
const HEAP_FLAT_LIMIT = 8 * 1024 * 1024;
const name = `rel-rpc-${runId()}`;
scenarioBroker(name); // cleanup only: stop processes, delete the queues

/** 80 % normal calls, 10 % time out (reply after the timeout), 10 % callers hang up at 50 ms. */
function call(n: number): RequestSpec {
  const body = JSON.stringify({ n });
  const kind = n % 10;
  if (kind === 3) return { path: `/v1/${name}?wait=true&timeoutMs=100&type=slow`, body };
  if (kind === 7)
    return { path: `/v1/${name}?wait=true&timeoutMs=2000&type=slow`, body, abortAfterMs: 50 };
  return { path: `/v1/${name}?wait=true&timeoutMs=5000`, body };
}

it('10k calls with timeouts and hang-ups: late replies dropped, pending back to 0, memory flat', async () => {
  const url = await testAmqpUrl();
  const consumer = await startServiceProc(url, name, 'rpc', {
    SERVICE_PREFETCH: '100',
    SLOW_MS: String(SLOW_MS),
    HEARTBEAT_INTERVAL_MS: '500',
  });
  const live = new LiveHeap();
  const gateway = await startGatewayProc(url, live.env());
  // Before any call (and before the registry wait: writing the snapshot pauses the process).
  const liveStart = await live.measure(gateway.proc.child.pid as number);
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
  // Every 250 ms: answered calls, RSS, V8 heap in use, pending calls. RSS climbs while V8 sizes
  // its heap, and the sampled heap in use rises and falls with the collector's schedule (a
  // gateway that allocates less collects less often), so "flat" is judged on the live heap: two
  // heap snapshots (each after a full collection), before the first call and after the run.
  const samples: { calls: number; rss: number; heap: number }[] = [];
  let pendingPeak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const m = await gateway.metrics();
      pendingPeak = Math.max(pendingPeak, metricSum(m, 'mq_rpc_pending_calls'));
      samples.push({
        calls: load.stats.statusOf.size,
        rss: gateway.rss(),
        heap: metricSum(m, 'nodejs_heap_size_used_bytes'),
      });
      await sleep(250);
    }
  })();
  await load.finished;
  const stats = await load.stop();
  const within = (from: number, to: number) =>
    samples.filter((x) => x.calls > from && x.calls <= to);
  const floor = (from: number, to: number) =>
    Math.min(Infinity, ...within(from, to).map((x) => x.heap));
  const heapFloorEarly = floor(1000, 4000);
  const heapFloorLate = floor(CALLS - 3000, CALLS);
  const rssWarm = within(0, 1000).at(-1)?.rss ?? samples[0]?.rss ?? 0;
  const rssPeak = Math.max(0, ...samples.map((x) => x.rss));
  const series = Array.from({ length: CALLS / 1000 }, (_, i) => {
    const last = within(0, (i + 1) * 1000).at(-1);
    return [(i + 1) * 1000, mb(last?.rss ?? 0), mb(last?.heap ?? 0)];
  });
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
  const liveEnd = await live.measure(gateway.proc.child.pid as number);
  live.close();
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
    'gateway memory flat (live heap after 10k calls < before the first + 8 MB)':
      liveEnd - liveStart < HEAP_FLAT_LIMIT,
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
      recovery: `pending ${pendingPeak} peak → ${pendingAfter}; live heap ${mb(liveStart)} → ${mb(liveEnd)} MB`,
      checks,
      notes: [
        `Answers: ${statusSummary(stats.byStatus)}. "accepted" here = calls answered 200 with the service's reply; each of those was processed.`,
        `${lateReplies} late replies (answers to calls that had timed out) were dropped by the RPC client and counted in \`mq_rpc_late_replies_total\`; no 200 carried another call's body. Calls whose caller hung up were answered into closed sockets (${status499} × 499 in \`gateway_http_requests_total\`).`,
        `\`mq_rpc_pending_calls\` peaked at ${pendingPeak} and was ${pendingAfter} after the run; gateway RSS ${mb(rssWarm)} MB after 1,000 calls and ${mb(rssEnd)} MB after ${stats.sent} (peak ${mb(rssPeak)} MB) while V8 grows its heap to a working size (and keeps what writing the first heap snapshot took); the live heap (a heap snapshot, taken after a full collection) was ${mb(liveStart)} MB before the first call and ${mb(liveEnd)} MB after the run${liveEnd - liveStart < HEAP_FLAT_LIMIT ? ': the calls leave nothing behind' : ''}; the sampled heap in use (lowest ${mb(heapFloorEarly)} MB in calls 1k-4k, ${mb(heapFloorLate)} MB in 7k-10k) only follows the collector's schedule. Per 1,000 calls (RSS, heap in use) in the figures.`,
        duplicatesNote(t.duplicates),
        `Processed but not answered 200: ${t.processedNotAccepted} (timed-out and abandoned calls the service still handled; their replies were the late ones).`,
      ],
      figures: {
        statuses: stats.byStatus,
        lateReplies,
        http499: status499,
        pendingCalls: { peak: pendingPeak, after: pendingAfter },
        gatewayRssMb: { after1k: mb(rssWarm), end: mb(rssEnd), peak: mb(rssPeak) },
        gatewayLiveHeapMb: { beforeLoad: mb(liveStart), end: mb(liveEnd) },
        gatewayHeapFloorMb: { calls1kTo4k: mb(heapFloorEarly), calls7kTo10k: mb(heapFloorLate) },
        gatewayRssAndHeapMbPer1000Calls: series,
        wrongReplies: stats.wrongReply,
        lostIds: t.lostIds,
      },
    },
    __filename,
  );
  expect(t.lostIds).toEqual([]);
  expect(failed).toEqual([]);
});
