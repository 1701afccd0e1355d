// A raw HTTP/1.1 client over a TCP socket: sends exactly the bytes it is given (malformed request
// lines and headers, lying Content-Lengths, trickled or stalled bodies) and parses one response.
import net from 'node:net';

export interface RawAnswer {
  /** 0 = the connection closed without an answer; -1 = no answer within the timeout. */
  status: number;
  headers: Record<string, string>;
  body: string;
  ms: number;
}

export interface RawRequest {
  /** Request line and headers, without the final blank line. */
  head: string;
  /** Body bytes, sent after the head; as several writes `pauseMs` apart when `chunks` > 1. */
  body?: Buffer | string;
  chunks?: number;
  pauseMs?: number;
  /** Keep the socket open after the body (a stalled upload): only the timeout ends it. */
  timeoutMs: number;
}

/** Sends one raw request; resolves with the first response (never rejects). */
export function rawRequest(host: string, port: number, req: RawRequest): Promise<RawAnswer> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (a: Omit<RawAnswer, 'ms'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...a, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish({ status: -1, headers: {}, body: '' }), req.timeoutMs);
    const tryParse = (final: boolean) => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (final) finish({ status: 0, headers: {}, body: buf.toString('latin1').slice(0, 200) });
        return;
      }
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      if (status >= 100 && status < 200) {
        // An interim answer (100 Continue): the real one follows.
        buf = buf.subarray(end + 4);
        tryParse(final);
        return;
      }
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = buf.subarray(end + 4);
      const length = headers['content-length'];
      if (length !== undefined) {
        if (rest.length >= Number(length))
          finish({ status, headers, body: rest.subarray(0, Number(length)).toString('utf8') });
        else if (final) finish({ status, headers, body: rest.toString('utf8') });
        return;
      }
      if (headers['transfer-encoding'] === 'chunked') {
        const text = rest.toString('latin1');
        if (text.includes('0\r\n\r\n') || final) finish({ status, headers, body: dechunk(text) });
        return;
      }
      if (final) finish({ status, headers, body: rest.toString('utf8') });
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    socket.on('close', () => tryParse(true));
    // A reset after the server answered and closed is normal (it refuses to read the rest).
    socket.on('error', () => tryParse(true));
    socket.on('connect', () => {
      socket.write(`${req.head}\r\n\r\n`, 'latin1');
      const body = req.body === undefined ? undefined : Buffer.from(req.body);
      if (!body || body.length === 0) return;
      const n = Math.max(1, req.chunks ?? 1);
      const size = Math.ceil(body.length / n);
      let i = 0;
      const next = () => {
        // Stop sending once the server has answered (it will not read the rest).
        if (done || buf.length > 0 || socket.destroyed) return;
        const part = body.subarray(i * size, (i + 1) * size);
        i++;
        if (part.length === 0) return;
        socket.write(part, () => {
          if (i < n) setTimeout(next, req.pauseMs ?? 0);
          else next();
        });
      };
      next();
    });
  });
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const nl = rest.indexOf('\r\n');
    if (nl < 0) return out;
    const size = parseInt(rest.slice(0, nl), 16);
    if (!size) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}
