// Unit: AMQP URL lists parse into per-node connect options; logs never see a password.
import { parseAmqpUrls, safeUrl } from './url';

test('one URL: credentials, vhost, port and the heartbeat default', () => {
  expect(parseAmqpUrls('amqp://app:p%40ss@rabbit:5673/my%2Fvhost')).toEqual([
    expect.objectContaining({
      protocol: 'amqp',
      hostname: 'rabbit',
      port: 5673,
      username: 'app',
      password: 'p@ss',
      vhost: 'my/vhost',
      heartbeat: 10,
    }),
  ]);
});

test('a comma-separated list gives one entry per cluster node; defaults fill the gaps', () => {
  const nodes = parseAmqpUrls('amqp://u:p@a:5672, amqps://u:p@b/?heartbeat=30,amqp://[::1]:5679');
  expect(nodes.map((n) => [n.protocol, n.hostname, n.port, n.vhost, n.heartbeat])).toEqual([
    ['amqp', 'a', 5672, '/', 10],
    ['amqps', 'b', 5671, '/', 30],
    ['amqp', '::1', 5679, '/', 10],
  ]);
  expect(nodes[2]).toMatchObject({ username: 'guest', password: 'guest' });
});

test('non-AMQP URLs are refused without echoing the password', () => {
  expect(() => parseAmqpUrls('http://u:secret@h')).toThrow(/not an AMQP URL: http:\/\/u:\*\*\*@h/);
  expect(safeUrl('amqp://u:secret@a,amqp://v:other@b:1/x?heartbeat=5')).toBe(
    'amqp://u:***@a,amqp://v:***@b:1/x',
  );
});
