// Unit: amqplib's frame muxer as patched at install (patches/amqplib+2.3.1.patch, applied by
// patch-package in postinstall): each pass writes its frames with the socket corked, so they go
// out as one writev. Fails loudly when the installed amqplib is not patched (a version the patch
// no longer matches, or an install without scripts).
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';

const MUX = path.join(path.dirname(require.resolve('amqplib')), 'lib', 'mux.js');
const PATCH_HINT =
  'amqplib is not patched: run `npm ci` (postinstall runs patch-package), or remake patches/amqplib+<version>.patch for the installed amqplib (docs: libs/messaging/README.md)';

interface MuxClass {
  new (downstream: NodeJS.WritableStream): {
    pipeFrom(readable: NodeJS.ReadableStream): void;
  };
}

test('the installed amqplib carries the patch', () => {
  const source = fs.readFileSync(MUX, 'utf8');
  if (!source.includes('patches/amqplib+')) throw new Error(PATCH_HINT);
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
