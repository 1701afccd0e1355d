// Rendering of dead letters: a summary table, a detailed view, and JSON.
import type { DeadLetter, PeekResult } from '@warren/dead-letters';

const MAX_BODY_SHOWN = 64 * 1024;

/** The body as text when it is valid UTF-8 without control characters, else base64. */
export function bodyText(body: Buffer): { encoding: 'utf8' | 'base64'; text: string } {
  const text = body.toString('utf8');
  // eslint-disable-next-line no-control-regex
  const binary = text.includes('\uFFFD') || /[\u0000-\u0008\u000E-\u001F]/.test(text);
  return binary
    ? { encoding: 'base64', text: body.toString('base64') }
    : { encoding: 'utf8', text };
}

/** AMQP header values as JSON-safe values (Buffers as base64, bigints as strings). */
function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

export function toJson(letter: DeadLetter): Record<string, unknown> {
  const { encoding, text } = bodyText(letter.body);
  const p = letter.properties;
  return {
    position: letter.position,
    messageId: letter.messageId ?? null,
    failedAt: letter.failedAt ?? null,
    attempt: letter.attempt ?? null,
    errorCode: letter.errorCode ?? null,
    errorMessage: letter.errorMessage ?? null,
    originalQueue: letter.originalQueue ?? null,
    contentType: p.contentType ?? null,
    type: p.type ?? null,
    appId: p.appId ?? null,
    timestamp: p.timestamp ?? null,
    headers: plain(letter.headers),
    size: letter.body.length,
    bodyEncoding: encoding,
    body: text,
  };
}

export function peekJson(result: PeekResult): string {
  return (
    JSON.stringify(
      { queue: result.queue, depth: result.depth, letters: result.letters.map(toJson) },
      null,
      2,
    ) + '\n'
  );
}

const oneLine = (s: string, max: number) => {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/** `list`: one row per dead letter. */
export function table(result: PeekResult): string {
  const head = `${result.queue}: ${result.depth} dead letter${result.depth === 1 ? '' : 's'}`;
  if (result.letters.length === 0) return `${head}\n`;
  const shown =
    result.letters.length < result.depth ? ` (showing ${result.letters.length}; --limit N)` : '';
  const rows = result.letters.map((l) => [
    String(l.position),
    l.messageId ?? '-',
    l.failedAt ?? '-',
    l.attempt === undefined ? '-' : String(l.attempt),
    l.errorCode ?? '-',
    oneLine(l.errorMessage ?? '-', 60),
    String(l.body.length),
  ]);
  const header = ['#', 'MESSAGE ID', 'FAILED AT', 'ATTEMPTS', 'CODE', 'ERROR', 'BYTES'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${head}${shown}\n${[header, ...rows].map(line).join('\n')}\n`;
}

/** `show`: everything about each dead letter, body included. */
export function details(result: PeekResult): string {
  const parts = result.letters.map((l) => {
    const p = l.properties;
    const { encoding, text } = bodyText(l.body);
    const body =
      text.length > MAX_BODY_SHOWN
        ? `${text.slice(0, MAX_BODY_SHOWN)}\n… (${text.length - MAX_BODY_SHOWN} more characters; use --json)`
        : text;
    const headerLines = Object.entries(l.headers)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `  ${k}: ${JSON.stringify(plain(v))}`);
    return [
      `── #${l.position} of ${result.depth} in ${result.queue} ──`,
      `message id:     ${l.messageId ?? '-'}`,
      `failed at:      ${l.failedAt ?? '-'}`,
      `attempts:       ${l.attempt ?? '-'}`,
      `error:          ${l.errorCode ?? '-'}: ${l.errorMessage ?? '-'}`,
      `original queue: ${l.originalQueue ?? '-'}`,
      `content type:   ${String(p.contentType ?? '-')}`,
      `type / app id:  ${String(p.type ?? '-')} / ${String(p.appId ?? '-')}`,
      'headers:',
      ...headerLines,
      `body (${l.body.length} bytes${encoding === 'base64' ? ', base64' : ''}):`,
      body,
    ].join('\n');
  });
  return parts.join('\n\n') + '\n';
}
