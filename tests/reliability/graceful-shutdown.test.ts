// Scenario 3 — SIGTERM to a consumer mid-load (a rolling restart): its in-flight messages finish
// and are acked, it takes no new ones, it exits 0 within the drain timeout; the other instance
// carries on and nothing accepted is lost or processed twice.
import { testAmqpUrl } from '../support/broker';
import { scenarioBroker } from './support/amqp';
import { runId, startLoad, statusSummary } from './support/load';
import {
  processedLines,
  startGatewayProc,
  startServiceProc,
  startedLines,
  waitProcessed,
} from './support/stack';
import { recordScenario, seconds } from './support/results';
import { sleep, scaled } from '../support/time';

jest.setTimeout(scaled(150_000));

const RATE = 150;
const DURATION_MS = 10_000;
const TERM_AT_MS = 4000;
const PREFETCH = 10;
const DRAIN_TIMEOUT_MS = 10_000;
const name = `rel-drain-${runId()}`;
scenarioBroker(name); // cleanup only: stop processes, delete the queues

it('SIGTERMs a consumer mid-load: in-flight finish and are acked, exit 0, zero lost', async () => {
  const url = await testAmqpUrl();
  // 250 ms per message and prefetch 10: the stopping instance has ~10 messages in flight.
  const env = {
    HANDLER_MS: '250',
    SERVICE_PREFETCH: String(PREFETCH),
    LOG_STARTS: '1',
    DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
  };
  const stopping = await startServiceProc(url, name, 'stopping', { ...env, LOG_LEVEL: 'info' });
  const staying = await startServiceProc(url, name, 'staying', env);
  const gateway = await startGatewayProc(url);
  const procs = [stopping.proc, staying.proc];

  const load = startLoad({
    baseUrl: gateway.baseUrl,
    rate: RATE,
    concurrency: 32,
    timeoutMs: 8000,
    idPrefix: `r3-${runId()}`,
    request: (n) => ({ path: `/v1/${name}`, body: JSON.stringify({ n }) }),
  });
  await sleep(TERM_AT_MS);
  const termAt = Date.now();
  const inFlightAtTerm = (() => {
    const s = startedLines([stopping.proc]).map((l) => l.id);
    const d = new Set(processedLines([stopping.proc]).map((l) => l.id));
    return s.filter((id) => !d.has(id)).length;
  })();
  stopping.proc.child.kill('SIGTERM');
  const code = await stopping.proc.exited;
  const exitMs = Date.now() - termAt;
  await sleep(Math.max(0, DURATION_MS - (Date.now() - termAt) - TERM_AT_MS));
  const stats = await load.stop();
  const t = await waitProcessed(stats.accepted, () => procs, 60_000);

  const started = startedLines([stopping.proc]);
  const finished = new Set(processedLines([stopping.proc]).map((l) => l.id));
  const startedAfterTerm = started.filter((s) => s.at > termAt).length;
  const unfinished = started.filter((s) => !finished.has(s.id)).length;
  const drained = /"drained":true/.test(stopping.proc.output());

  const checks = {
    'accepted-but-never-processed = 0': t.lost === 0,
    'duplicates = 0 (everything the stopping instance finished was acked)': t.duplicates === 0,
    'exit code 0': code === 0,
    'exit within the drain timeout': exitMs < DRAIN_TIMEOUT_MS,
    'drained (log says "drained":true)': drained,
    'every message it started, it finished': unfinished === 0,
    'at most prefetch messages started after SIGTERM (already delivered)':
      startedAfterTerm <= PREFETCH,
    'no failed request': stats.timeouts === 0 && stats.accepted.size === stats.sent,
  };
  const failed = recordScenario(
    {
      id: 3,
      key: 'graceful-shutdown',
      title: 'Graceful shutdown (SIGTERM, 1 of 2)',
      load: `${RATE} req/s × ${seconds(stats.durationMs)} (${stats.sent} requests), 2 consumers, 250 ms/message`,
      fault: `SIGTERM one instance at ${seconds(TERM_AT_MS)} (drain timeout ${seconds(DRAIN_TIMEOUT_MS)})`,
      accepted: t.accepted,
      processed: t.processed,
      lost: t.lost,
      duplicates: t.duplicates,
      recovery: `exit 0 after ${seconds(exitMs)}`,
      checks,
      notes: [
        `Answers: ${statusSummary(stats.byStatus)}.`,
        `At SIGTERM the instance had ${inFlightAtTerm} messages in its handlers; it cancelled its consumer, finished them (${startedAfterTerm} more, already delivered, started after the signal), acked everything and exited ${code} after ${seconds(exitMs)}. The other instance took the rest of the load.`,
        'No duplicates: a drained shutdown acks everything it processed, so nothing is redelivered.',
      ],
      figures: {
        statuses: stats.byStatus,
        exitCode: code,
        exitMs,
        inFlightAtTerm,
        startedAfterTerm,
        processedByStopping: finished.size,
        lostIds: t.lostIds,
      },
    },
    __filename,
  );
  expect(t.lostIds).toEqual([]);
  expect(failed).toEqual([]);
});
