// Unit: amqplib as patched at install (patches/amqplib+2.3.1.patch, applied by patch-package in
// postinstall): each frame-muxer pass writes its frames with the socket corked (one writev), and a
// publish's headers are encoded from the caller's object unless CC/BCC are added. Fails loudly when
// the installed amqplib is not patched (a version the patch no longer matches, or an install
// without scripts).
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';

const LIB = path.join(path.dirname(require.resolve('amqplib')), 'lib');
const MUX = path.join(LIB, 'mux.js');
const PATCH_HINT =
  'amqplib is not patched: run `npm ci` (postinstall runs patch-package), or remake patches/amqplib+<version>.patch for the installed amqplib (docs: libs/messaging/README.md)';

interface MuxClass {
  new (downstream: NodeJS.WritableStream): {
    pipeFrom(readable: NodeJS.ReadableStream): void;
  };
}

test('the installed amqplib carries the patch', () => {
  for (const file of [MUX, path.join(LIB, 'api_args.js')]) {
    const source = fs.readFileSync(file, 'utf8');
    if (!source.includes('patches/amqplib+')) throw new Error(`${PATCH_HINT} (${file})`);
  }
});

test('a muxer pass writes its frames while the socket is corked, in order, and uncorks once', async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Mux } = require(MUX) as { Mux: MuxClass };
  const events: string[] = [];
  const out = new PassThrough();
  const corking = { cork: out.cork.bind(out), uncork: out.uncork.bind(out) };
  out.cork = () => {
    events.push('cork');
    corking.cork();
  };
  out.uncork = () => {
    events.push('uncork');
    corking.uncork();
  };
  const write = out.write.bind(out);
  out.write = ((chunk: Buffer) => {
    events.push(`write ${chunk.toString()}`);
    return write(chunk);
  }) as typeof out.write;
  const mux = new Mux(out);
  const a = new PassThrough({ objectMode: true });
  const b = new PassThrough({ objectMode: true });
  mux.pipeFrom(a);
  mux.pipeFrom(b);
  a.write(Buffer.from('a1'));
  a.write(Buffer.from('a2'));
  b.write(Buffer.from('b1'));
  // The muxer reads on 'readable', in a pass scheduled with setImmediate.
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  if (!events.includes('cork')) throw new Error(PATCH_HINT);
  expect(events[0]).toBe('cork');
  expect(events.at(-1)).toBe('uncork');
  expect(events.filter((e) => e === 'uncork')).toHaveLength(1);
  expect(events.filter((e) => e.startsWith('write')).sort()).toEqual([
    'write a1',
    'write a2',
    'write b1',
  ]);
});

describe("a publish's headers", () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { publish } = require(path.join(LIB, 'api_args.js')) as {
    publish: (exchange: string, key: string, options: object) => { headers: object };
  };
  const { encodeTable } = require(path.join(LIB, 'codec.js')) as {
    encodeTable: (buffer: Buffer, table: object, offset: number) => number;
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
  const encoded = (table: object) => {
    const buffer = Buffer.alloc(4096);
    return buffer.subarray(0, encodeTable(buffer, table, 0));
  };
  const headers = {
    'x-request-id': 'r1',
    'x-attempt': 1,
    'x-published-at': 1765000000000,
    'x-call': 1,
  };

  test('are encoded from the caller’s object, to the bytes the layered copy gave', () => {
    const fields = publish('', 'q', { headers });
    if (fields.headers !== headers) throw new Error(PATCH_HINT);
    // Unpatched amqplib encoded Object.create(headers): the same keys, values and order.
    expect(encoded(fields.headers)).toEqual(encoded(Object.create(headers) as object));
    expect(encoded(publish('', 'q', {}).headers)).toEqual(encoded({}));
  });

  test('with CC or BCC are layered over the caller’s, which stay as they were', () => {
    const given = { ...headers };
    const fields = publish('', 'q', { headers: given, CC: 'a', BCC: ['b', 'c'] });
    expect(fields.headers).not.toBe(given);
    expect(given).toEqual(headers);
    expect({ ...fields.headers }).toEqual({ CC: ['a'], BCC: ['b', 'c'] });
    expect(encoded(fields.headers)).toEqual(encoded({ CC: ['a'], BCC: ['b', 'c'], ...headers }));
  });
});
