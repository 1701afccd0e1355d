// Scenario 2 — two instances of a service under load, one SIGKILLed: the messages it held unacked
// go back to the queue and the other instance processes them; nothing accepted is lost.
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
const KILL_AT_MS = 4000;
const name = `rel-kill-${runId()}`;
scenarioBroker(name); // cleanup only: stop processes, delete the queues

it('SIGKILLs one of two consumers mid-load: its unacked messages go to the other, zero lost', async () => {
  const url = await testAmqpUrl();
  // 300 ms per message, prefetch 30: each instance holds many unacked messages at any time.
  const env = { HANDLER_MS: '300', SERVICE_PREFETCH: '30', LOG_STARTS: '1' };
  const victim = await startServiceProc(url, name, 'victim', env);
  const survivor = await startServiceProc(url, name, 'survivor', env);
  const gateway = await startGatewayProc(url);
  const procs = [victim.proc, survivor.proc];

  const load = startLoad({
    baseUrl: gateway.baseUrl,
    rate: RATE,
    concurrency: 32,
    timeoutMs: 8000,
    idPrefix: `r2-${runId()}`,
    request: (n) => ({ path: `/v1/${name}`, body: JSON.stringify({ n }) }),
  });
  await sleep(KILL_AT_MS);
  const killedAt = Date.now();
  victim.proc.child.kill('SIGKILL');
  const code = await victim.proc.exited;
  await sleep(DURATION_MS - KILL_AT_MS);
  const stats = await load.stop();
  const t = await waitProcessed(stats.accepted, () => procs, 60_000);

  const processed = processedLines(procs);
  const started = startedLines(procs);
  const doneBy = (who: string) =>
    new Set(processed.filter((p) => p.instance === who).map((p) => p.id));
  const victimDone = doneBy('victim');
  const survivorDone = doneBy('survivor');
  // What the victim held when it died: started (or merely prefetched) but never finished there.
  const victimHeld = [
    ...new Set(started.filter((s) => s.instance === 'victim').map((s) => s.id)),
  ].filter((id) => !victimDone.has(id));
  const takenOver = victimHeld.filter((id) => survivorDone.has(id));
  const takeoverDoneAt = Math.max(
    0,
    ...processed
      .filter((p) => p.instance === 'survivor' && victimHeld.includes(p.id))
      .map((p) => p.at),
  );
  const recoveryMs = takenOver.length ? takeoverDoneAt - killedAt : 0;
  const processedByBoth = [...victimDone].filter((id) => survivorDone.has(id)).length;

  const checks = {
    'accepted-but-never-processed = 0': t.lost === 0,
    'the victim died of SIGKILL': code === null && victim.proc.child.signalCode === 'SIGKILL',
    'the victim held unacked messages when it died': victimHeld.length > 0,
    'every message the victim held was processed by the survivor':
      takenOver.length === victimHeld.length,
    'no failed request (all 202, no timeouts)':
      stats.timeouts === 0 && stats.connectionErrors === 0 && stats.accepted.size === stats.sent,
  };
  const failed = recordScenario(
    {
      id: 2,
      key: 'consumer-killed',
      title: 'Consumer killed (SIGKILL, 1 of 2)',
      load: `${RATE} req/s × ${seconds(stats.durationMs)} (${stats.sent} requests), 2 consumers, 300 ms/message`,
      fault: `SIGKILL one instance at ${seconds(KILL_AT_MS)}`,
      accepted: t.accepted,
      processed: t.processed,
      lost: t.lost,
      duplicates: t.duplicates,
      recovery: `${seconds(recoveryMs)} (its ${victimHeld.length} unacked redone)`,
      checks,
      notes: [
        `Answers: ${statusSummary(stats.byStatus)}.`,
        `The killed instance held ${victimHeld.length} delivered-but-unacked messages; the broker requeued them when its connection died and the survivor processed all ${takenOver.length} of them. Recovery = SIGKILL to the last of them done.`,
        t.duplicates > 0
          ? `Duplicates (${t.duplicates}): ${processedByBoth} messages the victim had finished (line printed) but not yet acked when it was killed, so they were redelivered and processed again: the at-least-once window between the handler's end and the ack.`
          : "Duplicates: none this run; a message the victim finished but had not yet acked when it died would be redelivered and processed twice (the at-least-once window between the handler's end and the ack).",
      ],
      figures: {
        statuses: stats.byStatus,
        victimProcessed: victimDone.size,
        survivorProcessed: survivorDone.size,
        victimHeldUnacked: victimHeld.length,
        redoneBySurvivor: takenOver.length,
        processedByBoth,
        takeoverMs: recoveryMs,
        lostIds: t.lostIds,
      },
    },
    __filename,
  );
  expect(t.lostIds).toEqual([]);
  expect(failed).toEqual([]);
});
