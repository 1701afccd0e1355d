// The console page: live numbers from /api/stream (server-sent events), charts from /api/history (uPlot).
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const fmt = (n, digits = 1) => (n === undefined || n === null ? '–' : Number(n).toFixed(digits));
  const ms = (s) => (s === undefined || s === null ? '–' : (s * 1000).toFixed(s < 0.01 ? 2 : 1));
  const q = (x) => (x ? `${ms(x.p50)} / ${ms(x.p95)} / ${ms(x.p99)}` : '–');
  const PALETTE = ['#3366cc', '#dc3912', '#ff9900', '#109618', '#990099', '#0099c6', '#dd4477'];
  const charts = {};

  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function renderTable(services) {
    const body = $('services').tBodies[0];
    body.replaceChildren();
    for (const s of services) {
      const row = document.createElement('tr');
      row.dataset.service = s.name;
      cell(row, s.name, 'name');
      cell(row, String(s.instances), 'instances');
      cell(row, fmt(s.rate), 'rate');
      cell(row, fmt(s.rates.success), 'success');
      cell(row, fmt(s.rates.retry), s.rates.retry > 0 ? 'retry bad' : 'retry');
      cell(
        row,
        fmt(s.rates.dead_letter),
        s.rates.dead_letter > 0 ? 'dead-letter bad' : 'dead-letter',
      );
      cell(row, fmt(s.rates.rejected), 'rejected');
      cell(row, fmt(s.eventRate), 'events');
      cell(row, q(s.processing), 'processing');
      cell(row, q(s.queueWait), 'queue-wait');
      cell(row, String(s.inFlight), 'in-flight');
      cell(row, s.queueDepth === undefined ? '–' : String(s.queueDepth), 'queue');
      cell(
        row,
        s.dlqDepth === undefined ? '–' : String(s.dlqDepth),
        s.dlqDepth > 0 ? 'dlq bad' : 'dlq',
      );
      body.appendChild(row);
    }
  }

  function renderGateway(g) {
    if (!g) {
      $('gw-http').textContent = 'not scraped';
      return;
    }
    const http = Object.entries(g.http || {})
      .sort()
      .map(([status, rate]) => `${status}: ${fmt(rate)}`)
      .join('  ');
    $('gw-http').textContent = http || '–';
    $('gw-rpc').textContent = q(g.rpc);
    $('gw-pending').textContent = String(g.pending ?? 0);
    $('gw-events').textContent = fmt(g.eventsPublishedRate);
  }

  function chart(id, title, series) {
    const el = $(id);
    const names = Object.keys(series);
    const times = [...new Set(names.flatMap((n) => series[n].map((p) => p.t)))].sort(
      (a, b) => a - b,
    );
    const data = [times.map((t) => t / 1000)];
    for (const n of names) {
      const at = new Map(series[n].map((p) => [p.t, p.v]));
      data.push(times.map((t) => (at.has(t) ? at.get(t) : null)));
    }
    const width = Math.max(360, el.clientWidth || 420);
    if (charts[id] && charts[id].series.length === names.length + 1) {
      charts[id].setData(data);
      return;
    }
    if (charts[id]) charts[id].destroy();
    charts[id] = new uPlot(
      {
        width,
        height: 220,
        title,
        scales: { x: { time: true } },
        series: [{}].concat(
          names.map((n, i) => ({
            label: n,
            stroke: PALETTE[i % PALETTE.length],
            width: 1.5,
            spanGaps: true,
          })),
        ),
      },
      data,
      el,
    );
  }

  async function renderCharts() {
    const res = await fetch('/api/history?minutes=15');
    if (!res.ok) return;
    const { series } = await res.json();
    const pick = (key, scale, only) => {
      const out = {};
      for (const [name, points] of Object.entries(series)) {
        if (only && !only(name)) continue;
        out[name] = points.map((p) => ({ t: p.t, v: p[key] === null ? null : p[key] * scale }));
      }
      return out;
    };
    chart(
      'chart-rate',
      '',
      pick('rate', 1, (n) => n !== 'gateway'),
    );
    chart(
      'chart-p95',
      '',
      pick('p95', 1000, (n) => n !== 'gateway'),
    );
    chart(
      'chart-gateway',
      '',
      pick('requests', 1, (n) => n === 'gateway'),
    );
  }

  // Dead letters: read-only list; replay asks for a gateway API key and a confirmation, both checked by the server.
  let dlqService;
  async function showDeadLetters(name) {
    dlqService = name;
    $('dead-letters').hidden = false;
    $('dlq-name').textContent = `${name}.dlq`;
    $('dlq-result').textContent = '';
    const res = await fetch(`/api/dlq/${encodeURIComponent(name)}?limit=50`);
    const body = $('dlq-table').tBodies[0];
    body.replaceChildren();
    if (!res.ok) {
      $('dlq-result').textContent = (await res.json()).detail;
      return;
    }
    for (const l of (await res.json()).letters) {
      const row = document.createElement('tr');
      cell(row, String(l.position));
      cell(row, l.messageId ?? '–');
      cell(row, l.failedAt ?? '–');
      cell(row, String(l.attempt ?? '–'));
      cell(row, `${l.errorCode ?? ''} ${l.errorMessage ?? ''}`.trim() || '–');
      cell(row, l.body.slice(0, 120));
      body.appendChild(row);
    }
  }

  async function replay() {
    const key = window.prompt(`Gateway API key to replay ${dlqService}.dlq:`);
    if (!key) return;
    const post = (body) =>
      fetch(`/api/dlq/${encodeURIComponent(dlqService)}/replay`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const first = await post({});
    const offer = await first.json();
    if (!first.ok) {
      $('dlq-result').textContent = offer.detail;
      return;
    }
    if (!window.confirm(`Replay ${offer.toReplay} dead letter(s) to ${dlqService}?`)) return;
    const done = await post({ confirm: offer.confirm });
    const r = await done.json();
    $('dlq-result').textContent = done.ok
      ? `replayed ${r.replayed}, kept ${r.kept}, skipped ${r.skippedCalls + r.skippedExpired}`
      : r.detail || r.error;
    showDeadLetters(dlqService);
  }
  $('dlq-replay').addEventListener('click', () =>
    replay().catch((e) => ($('dlq-result').textContent = String(e))),
  );

  function onOverview(o) {
    renderTable(o.services);
    renderGateway(o.gateway);
    $('status').textContent =
      `updated ${new Date(o.at).toLocaleTimeString()} · every ${o.intervalMs / 1000} s`;
    renderCharts().catch((err) => console.warn('charts not updated', err));
  }

  const events = new EventSource('/api/stream');
  events.addEventListener('overview', (e) => onOverview(JSON.parse(e.data)));
  events.onerror = () => ($('status').textContent = 'reconnecting…');
})();
