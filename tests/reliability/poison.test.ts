// Scenario 4 — poison messages under load: a handler that always fails for some inputs. Those
// messages are retried through the delay queues and land in <queue>.dlq after the configured
// attempts, with the error in their headers; good messages keep flowing meanwhile.
import { testAmqpUrl } from '../support/broker';
import { eventually, sleep, scaled } from '../support/time';
import { scenarioBroker } from './support/amqp';
import { runId, startLoad, statusSummary } from './support/load';
import { processedLines, startGatewayProc, startServiceProc, tally } from './support/stack';
import { duplicatesNote, recordScenario, seconds } from './support/results';

jest.setTimeout(scaled(150_000));

const RATE = 150;
const DURATION_MS = 10_000;
/** Every POISON_EVERY-th request is poison. */
const POISON_EVERY = 20;
const MAX_ATTEMPTS = 3;
const DELAYS = [200, 400];
const name = `rel-poison-${runId()}`;
const amqp = scenarioBroker(name, DELAYS);

const quantile = (xs: number[], q: number): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};

it('sends poison messages to the DLQ after the configured attempts while good ones flow', async () => {
  const url = await testAmqpUrl();
  const consumer = await startServiceProc(url, name, 'c1', {
    HANDLER_MS: '5',
    SERVICE_PREFETCH: '20',
    MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    RETRY_DELAYS_MS: DELAYS.join(','),
  });
  const gateway = await startGatewayProc(url);

  const poisonIds = new Set<string>();
  const prefix = `r4-${runId()}`;
  const load = startLoad({
    baseUrl: gateway.baseUrl,
    rate: RATE,
    concurrency: 32,
    timeoutMs: 8000,
    idPrefix: prefix,
    request: (n) => {
      const poison = n % POISON_EVERY === POISON_EVERY - 1;
      if (poison) poisonIds.add(`${prefix}-${n}`);
      return { path: `/v1/${name}`, body: JSON.stringify(poison ? { n, poison: true } : { n }) };
    },
  });
  await sleep(DURATION_MS);
  const stats = await load.stop();
  const loadEnd = Date.now();

  const acceptedGood = new Set([...stats.accepted].filter((id) => !poisonIds.has(id)));
  const acceptedPoison = new Set([...stats.accepted].filter((id) => poisonIds.has(id)));
  const good = () => processedLines([consumer.proc]);
  await eventually(() => tally(acceptedGood, good()).lost === 0, 30_000, 'good processed').catch(
    () => undefined,
  );
  // The last poison message needs its attempts plus the delays (0.6 s) to reach the DLQ.
  await eventually(
    async () => ((await amqp().depth(`${name}.dlq`)) ?? 0) >= acceptedPoison.size,
    30_000,
    'poison messages in the DLQ',
  ).catch(() => undefined);
  const dead = await amqp().drain(`${name}.dlq`);
  const tGood = tally(acceptedGood, good());

  // Dead letters keep the request's x-request-id (the id a client saw accepted).
  const deadIds = dead.map((m) => String(m.properties.headers?.['x-request-id']));
  const deadSet = new Set(deadIds);
  const lostPoison = [...acceptedPoison].filter((id) => !deadSet.has(id));
  const attempts = dead.map((m) => Number(m.properties.headers?.['x-attempt']));
  const errors = new Set(dead.map((m) => String(m.properties.headers?.['x-error-message'])));
  const failedLines = [...consumer.proc.output().matchAll(/^failed (\S+) (\d+)$/gm)];
  const triesOf = new Map<string, number>();
  for (const m of failedLines) triesOf.set(m[1] as string, (triesOf.get(m[1] as string) ?? 0) + 1);

  // Good messages kept flowing: their end-to-end latency (request sent -> processed) while poison
  // messages were being retried, and how many were done by the end of the load.
  const sentAt = new Map(stats.events.map((e) => [e.id, e.at - e.ms]));
  const goodLines = good().filter((p) => acceptedGood.has(p.id));
  const latencies = goodLines.map((p) => p.at - (sentAt.get(p.id) ?? p.at));
  const doneByLoadEnd = new Set(goodLines.filter((p) => p.at <= loadEnd).map((p) => p.id)).size;
  const p50 = quantile(latencies, 0.5);
  const p99 = quantile(latencies, 0.99);

  const lost = tGood.lost + lostPoison.length;
  const poisonDuplicates = deadIds.length - deadSet.size;
  const checks = {
    'accepted-but-never-processed = 0 (good processed, poison in the DLQ)': lost === 0,
    'every poison message reached the DLQ': lostPoison.length === 0 && acceptedPoison.size > 0,
    [`each was tried ${MAX_ATTEMPTS} times (x-attempt = ${MAX_ATTEMPTS})`]: attempts.every(
      (a) => a === MAX_ATTEMPTS,
    ),
    'the error is in the DLQ headers': [...errors].every((e) => /poison message/.test(e)),
    'no good message in the DLQ': deadIds.every((id) => poisonIds.has(id)),
    'good messages kept flowing (≥ 95 % done by the end of the load)':
      doneByLoadEnd >= 0.95 * acceptedGood.size,
    'all requests answered 202': stats.accepted.size === stats.sent,
  };
  const failed = recordScenario(
    {
      id: 4,
      key: 'poison',
      title: 'Poison messages',
      load: `${RATE} req/s × ${seconds(stats.durationMs)} (${stats.sent} requests), 1 in ${POISON_EVERY} poison`,
      fault: `handler always throws for poison; maxAttempts ${MAX_ATTEMPTS}, delays ${DELAYS.join('/')} ms`,
      accepted: stats.accepted.size,
      processed: tGood.processed + (acceptedPoison.size - lostPoison.length),
      lost,
      duplicates: tGood.duplicates + poisonDuplicates,
      recovery: `good p50 ${p50} ms, p99 ${p99} ms`,
      checks,
      notes: [
        `Answers: ${statusSummary(stats.byStatus)}.`,
        `${acceptedGood.size} good messages processed, ${acceptedPoison.size} poison messages dead-lettered (processed = both). Each poison message was handled ${MAX_ATTEMPTS} times (the handler printed ${failedLines.length} failures for ${triesOf.size} ids) and then published to \`${name.replace(/-[0-9a-f]+$/, '-…')}.dlq\` with \`x-error-message\`.`,
        `Good messages kept flowing while the poison ones were retried: ${doneByLoadEnd} of ${acceptedGood.size} were done before the load ended; latency from the request to processed: p50 ${p50} ms, p99 ${p99} ms (the recovery column).`,
        duplicatesNote(tGood.duplicates + poisonDuplicates),
      ],
      figures: {
        statuses: stats.byStatus,
        acceptedGood: acceptedGood.size,
        acceptedPoison: acceptedPoison.size,
        deadLettered: deadIds.length,
        handlerFailures: failedLines.length,
        goodLatencyMs: { p50, p99, max: quantile(latencies, 1) },
        goodDoneByLoadEnd: doneByLoadEnd,
        lostIds: [...tGood.lostIds, ...lostPoison.slice(0, 20)],
      },
    },
    __filename,
  );
  expect(lostPoison).toEqual([]);
  expect(tGood.lostIds).toEqual([]);
  expect(failed).toEqual([]);
});
