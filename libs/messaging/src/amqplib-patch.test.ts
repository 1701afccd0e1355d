// Unit: amqplib as patched at install (patches/amqplib+2.3.1.patch, applied by patch-package in
// postinstall): each frame-muxer pass writes its frames with the socket corked (one writev), a
// publish's headers are encoded from the caller's object unless CC/BCC are added, and a message's
// frames are encoded into pooled buffers with the body frame written in place. Fails loudly when
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
  for (const file of [
    MUX,
    ...['api_args.js', 'defs.js', 'connection.js'].map((f) => path.join(LIB, f)),
  ]) {
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

describe("a message's frames", () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const defs = require(path.join(LIB, 'defs.js')) as {
    encodeMethod: (method: number, channel: number, fields: object) => Buffer;
    encodeProperties: (klass: number, channel: number, size: number, fields: object) => Buffer;
    decode: (id: number, buffer: Buffer) => Record<string, unknown>;
    BasicPublish: number;
    BasicAck: number;
    BasicProperties: number;
  };
  const { makeBodyFrame } = require(path.join(LIB, 'frame.js')) as {
    makeBodyFrame: (channel: number, payload: Buffer) => Buffer;
  };
  const { Connection } = require(path.join(LIB, 'connection.js')) as {
    Connection: { prototype: { sendMessage: (...args: unknown[]) => boolean } };
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
  const properties = {
    contentType: 'application/json',
    headers: { 'x-request-id': 'r1', 'x-attempt': 1, 'x-call': 1 },
    deliveryMode: 2,
    correlationId: 'c0rr',
    replyTo: 'amq.rabbitmq.reply-to',
    expiration: '30000',
    messageId: 'm1',
    timestamp: 1765000000,
    userId: 'guest',
    appId: 'warren-gateway',
  };
  const encoders: [string, () => Buffer][] = [
    [
      'basic.publish',
      () =>
        defs.encodeMethod(defs.BasicPublish, 3, {
          exchange: '',
          routingKey: 'echo',
          mandatory: true,
        }),
    ],
    ['basic.ack', () => defs.encodeMethod(defs.BasicAck, 3, { deliveryTag: 77, multiple: true })],
    ['properties', () => defs.encodeProperties(defs.BasicProperties, 3, 22, properties)],
  ];
  /** A copy outside Node's buffer pool (Buffer.from would take it from the pool, filled next). */
  const unpooled = (b: Buffer) => {
    const copy = Buffer.alloc(b.length);
    b.copy(copy);
    return copy;
  };
  /** Encodes with Node's buffer pool filled with `fill` first (the next pooled buffer comes from it). */
  const withPool = (fill: number, encode: () => Buffer) => {
    new Uint8Array(Buffer.allocUnsafe(1).buffer).fill(fill);
    return unpooled(encode());
  };

  test.each(encoders)('%s: the same bytes whatever the pool held before', (_name, encode) => {
    const zeros = withPool(0x00, encode);
    const ones = withPool(0xff, encode);
    expect(ones).toEqual(zeros);
  });

  test('properties decode back to what was encoded', () => {
    const frame = withPool(0xa5, encoders[2]![1]);
    // Frame: type(1) channel(2) size(4), then class(2) weight(2) body size(8), flags and fields.
    expect(frame[0]).toBe(2);
    expect(frame.readBigUInt64BE(11)).toBe(22n);
    expect(frame.at(-1)).toBe(206);
    expect(defs.decode(defs.BasicProperties, frame.subarray(19, -1))).toEqual(properties);
  });

  test('sendMessage writes method, header and body frames as unpatched amqplib made them', () => {
    let written: Buffer | undefined;
    const fakeConnection = {
      channels: { 3: { buffer: { write: (b: Buffer) => (written = unpooled(b)) } } },
    };
    const body = Buffer.from('{"msg":"hello","n":42}');
    const fields = { exchange: '', routingKey: 'echo', mandatory: false };
    new Uint8Array(Buffer.allocUnsafe(1).buffer).fill(0xee);
    Connection.prototype.sendMessage.call(
      fakeConnection,
      3,
      defs.BasicPublish,
      fields,
      defs.BasicProperties,
      properties,
      body,
    );
    if (written === undefined) throw new Error('sendMessage wrote nothing');
    expect(written).toEqual(
      Buffer.concat([
        defs.encodeMethod(defs.BasicPublish, 3, fields),
        defs.encodeProperties(defs.BasicProperties, 3, body.length, properties),
        makeBodyFrame(3, body),
      ]),
    );
  });
});
