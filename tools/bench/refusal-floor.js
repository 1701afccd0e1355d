// The floor under any refusal: CPU per answer of a bare node:http server that answers every request 503, open loop.
//
//   node tools/bench/refusal-floor.js            # 14000 req/s and 5000 req/s, 8 s each
//   RATES=10000 SECONDS=10 node tools/bench/refusal-floor.js
//
// No framework, no broker, no logging: one writeHead and one end per request, the body fixed. What
// it costs per answer (from /proc/<pid>/stat) is the least a gateway in one node process pays to
// refuse a request on this machine, whatever its admission logic; docs/performance/notes.md uses it
// to show which overload goals one process can meet. Load: lib/open-loop.js (as bench:overload).
'use strict';
const { fork } = require('node:child_process');
const procs = require('./lib/procs');
const { openLoop, summarizeOpenLoop } = require('./lib/open-loop');

const BODY = JSON.stringify({
  type: 'https://warren.dev/problems/overloaded',
  title: 'Service Unavailable',
  status: 503,
  detail: 'retry later',
  requestId: '00000000-0000-4000-8000-000000000000',
});

function serve() {
  const http = require('node:http');
  const headers = [
    'content-type',
    'application/problem+json',
    'content-length',
    String(Buffer.byteLength(BODY)),
    'retry-after',
    '1',
  ];
  const server = http.createServer((req, res) => {
    res.writeHead(503, headers);
    res.end(BODY);
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
}

async function main() {
  if (process.argv[2] === '--serve') return serve();
  const rates = (process.env.RATES ?? '14000,5000').split(',').map(Number);
  const seconds = Number(process.env.SECONDS ?? 8);
  const child = fork(__filename, ['--serve']);
  const port = await new Promise((resolve) => child.once('message', resolve));
  try {
    for (const rate of rates) {
      const before = procs.cpuSnap({ server: child.pid, loadgen: process.pid });
      const raw = await openLoop({
        url: `http://127.0.0.1:${port}/v1/echo`,
        rate,
        seconds,
        warmupS: 1,
        body: '{"hello":"world"}',
      });
      const after = procs.cpuSnap({ server: child.pid, loadgen: process.pid });
      const cpu = procs.cpuDelta(before, after);
      const s = summarizeOpenLoop(raw);
      // Every request sent in the window (the warm-up second too) that got an answer.
      const answers = raw.sent - raw.timeout - raw.error;
      const windowS = (after.t - before.t) / 1000;
      // Everything sent was answered (or timed out): CPU over the whole window ÷ answers.
      const usPer = (name) => ((cpu[name] / 100) * windowS * 1e6) / answers;
      console.log(
        `${rate} req/s offered: ${answers} answered in ${windowS.toFixed(1)} s, p99 ${s.shedP99Ms?.toFixed(1)} ms; ` +
          `server ${usPer('server').toFixed(1)} µs CPU per answer (${cpu.server.toFixed(0)} % of a core), ` +
          `load generator ${usPer('loadgen').toFixed(1)} µs`,
      );
    }
  } finally {
    child.kill();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
