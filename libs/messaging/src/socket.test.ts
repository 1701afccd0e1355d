// Unit: coalesceWrites corks the socket around each muxer pass, and leaves unknown shapes alone.
import type { ChannelModel } from 'amqplib';
import { coalesceWrites } from './socket';

test('a muxer pass runs corked and is flushed when it returns, even if it throws', () => {
  const events: string[] = [];
  const stream = { cork: () => events.push('cork'), uncork: () => events.push('uncork') };
  let fail = false;
  const muxer = {
    _readIncoming() {
      events.push('write a', 'write b');
      if (fail) throw new Error('boom');
    },
  };
  const model = { connection: { muxer, stream } } as unknown as ChannelModel;
  expect(coalesceWrites(model)).toBe(true);
  muxer._readIncoming();
  expect(events).toEqual(['cork', 'write a', 'write b', 'uncork']);
  fail = true;
  expect(() => muxer._readIncoming()).toThrow('boom');
  expect(events.slice(-1)).toEqual(['uncork']);
});

test('other shapes are left alone', () => {
  expect(coalesceWrites({} as ChannelModel)).toBe(false);
  expect(coalesceWrites({ connection: { muxer: {}, stream: {} } } as unknown as ChannelModel)).toBe(
    false,
  );
});
