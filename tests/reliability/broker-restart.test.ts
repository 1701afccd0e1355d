// Scenario 1 — broker restart under load, on a private RabbitMQ node (never the shared one):
// 503 + Retry-After while it is down, no hung request, /readyz follows the connection, gateway and
// consumer recover on their own within 5 s of start_app, and nothing accepted is lost.
import { startPrivateBroker, type PrivateBroker } from '../support/private-broker';
import { stopAll } from '../support/processes';
import { startLoad, statusSummary, runId } from './support/load';
import {
  processedLines,
  startGatewayProc,
  startServiceProc,
  waitProcessed,
  type GatewayProc,
  type ServiceProc,
} from './support/stack';
import { recordScenario, seconds } from './support/results';
import { sleep, scaled } from '../support/time';

jest.setTimeout(scaled(180_000));

const RATE = 150;
const BEFORE_MS = 4000;
const DOWN_MS = 3000;
const AFTER_MS = 6000;
const RECOVERY_LIMIT_MS = 5000;
/** Above the gateway's confirm timeout (5 s): a request still open after this is hung. */
const CLIENT_TIMEOUT_MS = 8000;

let broker: PrivateBroker;
let gateway: GatewayProc;
let consumer: ServiceProc;

beforeAll(async () => {
  broker = await startPrivateBroker('warren-rel');
});

afterAll(async () => {
  await stopAll();
  await broker?.stop();
});

/** Polls `probe` every 100 ms from now on; `stop()` returns the [ms, value] samples. */
function sampler(probe: () => Promise<number>) {
  const samples: [number, number][] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      samples.push([Date.now(), await probe()]);
      await sleep(100);
    }
  })();
  return {
    samples,
    stop: async () => {
      on = false;
      await loop;
      return samples;
    },
  };
}

/** First sample at or after `from` with the value `want` (its time), or undefined. */
const firstAfter = (samples: [number, number][], from: number, want: number) =>
  samples.find(([t, v]) => t >= from && v === want)?.[0];

it('restarts the broker under load: 503 + Retry-After while down, recovery < 5 s, zero lost', async () => {
  const name = `rel-restart-${runId()}`;
  consumer = await startServiceProc(broker.url, name, 'c1', {
    HANDLER_MS: '2',
    SERVICE_PREFETCH: '20',
  });
  gateway = await startGatewayProc(broker.url);

  const gwReady = sampler(() => gateway.readyz());
  const svcReady = sampler(() => consumer.readyz());
  const load = startLoad({
    baseUrl: gateway.baseUrl,
    rate: RATE,
    concurrency: 32,
    timeoutMs: CLIENT_TIMEOUT_MS,
    idPrefix: `r1-${runId()}`,
    request: (n) => ({ path: `/v1/${name}`, body: JSON.stringify({ n }) }),
  });
  await sleep(BEFORE_MS);
  const downAt = Date.now();
  await broker.stopApp();
  const stoppedAt = Date.now();
  await sleep(DOWN_MS);
  const startCmdAt = Date.now();
  await broker.ctl('start_app');
  const backAt = Date.now();
  await sleep(AFTER_MS);
  const stats = await load.stop();
  const gwSamples = await gwReady.stop();
  const svcSamples = await svcReady.stop();

  const t = await waitProcessed(stats.accepted, () => [consumer.proc], 60_000);
  const processed = processedLines([consumer.proc]);

  // Recovery, measured from the moment start_app returned (the broker accepts connections again).
  const gatewayReadyAt = firstAfter(gwSamples, backAt, 200);
  const first202At = stats.events.find((e) => e.at >= backAt && e.status === 202)?.at;
  const consumerReadyAt = firstAfter(svcSamples, backAt, 200);
  const firstProcessedAt = processed.find((p) => p.at >= backAt)?.at;
  const since = (at: number | undefined) => (at === undefined ? Infinity : at - backAt);
  const recovery = {
    gatewayReadyMs: since(gatewayReadyAt),
    first202Ms: since(first202At),
    consumerReadyMs: since(consumerReadyAt),
    firstProcessedMs: since(firstProcessedAt),
  };
  const recoveryMs = Math.max(...Object.values(recovery));

  // While down (from stop_app's return to start_app's): what the clients got.
  const during = stats.events.filter((e) => e.at > stoppedAt + 200 && e.at < startCmdAt);
  const duringStatus: Record<string, number> = {};
  for (const e of during) duringStatus[e.status] = (duringStatus[e.status] ?? 0) + 1;
  const readyDown = gwSamples.some(([at, v]) => at > stoppedAt && at < startCmdAt && v === 503);
  const svcDown = svcSamples.some(([at, v]) => at > stoppedAt && at < startCmdAt && v === 503);
  const slowest503 = Math.max(0, ...stats.events.filter((e) => e.status === 503).map((e) => e.ms));

  const checks = {
    'accepted-but-never-processed = 0': t.lost === 0,
    'no request hung (client timeouts = 0, connection errors = 0)':
      stats.timeouts === 0 && stats.connectionErrors === 0,
    'while down, only 503 answers': during.length > 0 && during.every((e) => e.status === 503),
    'every 503/429 carries Retry-After': stats.missingRetryAfter === 0,
    'every error is problem+json': stats.notProblemJson === 0,
    'gateway /readyz 503 while down': readyDown,
    'consumer /readyz 503 while down': svcDown,
    'gateway /readyz 200 within 5 s of start_app': recovery.gatewayReadyMs <= RECOVERY_LIMIT_MS,
    'first 202 within 5 s of start_app': recovery.first202Ms <= RECOVERY_LIMIT_MS,
    'consumer consuming within 5 s of start_app': recovery.consumerReadyMs <= RECOVERY_LIMIT_MS,
    'first message processed within 5 s of start_app':
      recovery.firstProcessedMs <= RECOVERY_LIMIT_MS,
    'all 202 bodies carry the sent requestId': stats.wrongRequestId === 0,
  };
  const failed = recordScenario(
    {
      id: 1,
      key: 'broker-restart',
      title: 'Broker restart under load',
      load: `${RATE} req/s × ${seconds(stats.durationMs)} (${stats.sent} requests), 1 consumer`,
      fault: `rabbitmqctl stop_app, ${seconds(startCmdAt - downAt)} down, start_app (private node)`,
      accepted: t.accepted,
      processed: t.processed,
      lost: t.lost,
      duplicates: t.duplicates,
      recovery: `${seconds(recoveryMs)} (ready ${seconds(recovery.gatewayReadyMs)}, first 202 ${seconds(recovery.first202Ms)}, consuming ${seconds(recovery.consumerReadyMs)})`,
      checks,
      notes: [
        `Answers: ${statusSummary(stats.byStatus)}; while the broker was down: ${statusSummary(duringStatus)}; slowest 503 ${stats.events.length ? slowest503 : 0} ms.`,
        "Recovery is measured from the return of `rabbitmqctl start_app` to: gateway `/readyz` 200, the first `202`, the consumer `/readyz` 200 and its first processed message; the slowest of the four is the row's figure.",
        t.duplicates > 0
          ? `Duplicates (${t.duplicates}): messages the consumer had handled but whose ack died with the connection; the broker redelivered them (at-least-once).`
          : 'Duplicates: none this run; a message handled just before the connection dropped, its ack lost with it, would be redelivered and counted here (at-least-once).',
        `${t.processedNotAccepted} processed ids were never answered 202 (a publish in flight when the connection dropped is answered 503, yet may be stored: the client retries, the consumer sees it twice).`,
      ],
      figures: {
        statuses: stats.byStatus,
        duringOutage: duringStatus,
        recoveryMs: recovery,
        outageMs: startCmdAt - downAt,
        stopAppMs: stoppedAt - downAt,
        startAppMs: backAt - startCmdAt,
        maxLatencyMs: stats.maxLatencyMs,
        processedNotAccepted: t.processedNotAccepted,
        lostIds: t.lostIds,
      },
    },
    __filename,
  );
  expect(t.lostIds).toEqual([]);
  expect(failed).toEqual([]);
});
