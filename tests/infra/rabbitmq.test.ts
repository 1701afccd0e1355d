// infra/rabbitmq: the compose broker's config, plugins and definitions. The permission regexes
// are checked statically (each user reaches its own resources and nobody else's) and then
// live: the definitions are imported into the local broker under a throw-away vhost and
// users (rabbitmqctl), and each component's real AMQP operations are tried with its user.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { declareServiceTopology } from '@warren/messaging';
import { EVENTS_EXCHANGE, HEARTBEAT_EXCHANGE, retryQueueName } from '@warren/protocol';
import { REPO_ROOT } from './promql';
import { scaled } from '../support/time';

const RABBITMQ_DIR = path.join(REPO_ROOT, 'infra/rabbitmq');

interface Definitions {
  users: { name: string; password?: string; password_hash?: string; tags: string[] | string }[];
  vhosts: { name: string }[];
  permissions: { user: string; vhost: string; configure: string; write: string; read: string }[];
  exchanges: { name: string; vhost: string; type: string; durable: boolean }[];
  queues: unknown[];
  [key: string]: unknown;
}

const definitions = JSON.parse(
  readFileSync(path.join(RABBITMQ_DIR, 'definitions.json'), 'utf8'),
) as Definitions;

/** Every user but the gateway and admin is a consumer service (npm run new-service adds more). */
const SERVICES = definitions.users
  .map((u) => u.name)
  .filter((n) => n !== 'admin' && n !== 'gateway');

const permissionsOf = (user: string) => {
  const p = definitions.permissions.filter((x) => x.user === user);
  if (p.length !== 1) throw new Error(`expected one permission entry for ${user}, got ${p.length}`);
  const entry = p[0]!;
  return {
    vhost: entry.vhost,
    configure: new RegExp(entry.configure),
    write: new RegExp(entry.write),
    read: new RegExp(entry.read),
  };
};

describe('rabbitmq.conf and enabled_plugins', () => {
  const conf = readFileSync(path.join(RABBITMQ_DIR, 'rabbitmq.conf'), 'utf8');
  const settings = new Map(
    conf
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split('=').map((s) => s.trim()) as [string, string]),
  );

  it('loads the definitions at boot and keeps guest to localhost', () => {
    expect(settings.get('load_definitions')).toBe('/etc/rabbitmq/definitions.json');
    expect(settings.get('loopback_users.guest')).toBe('true');
    expect(settings.get('prometheus.tcp.port')).toBe('15692');
  });

  it('enables the management and prometheus plugins', () => {
    const plugins = readFileSync(path.join(RABBITMQ_DIR, 'enabled_plugins'), 'utf8').trim();
    expect(plugins).toBe('[rabbitmq_management,rabbitmq_prometheus].');
  });
});

describe('definitions.json', () => {
  it('creates the warren vhost, a user per component and no guest', () => {
    expect(definitions.vhosts.map((v) => v.name)).toEqual(['warren']);
    expect(definitions.users.map((u) => u.name)).toEqual(
      expect.arrayContaining(['admin', 'gateway', 'hello', 'echo', 'wordcount']),
    );
    for (const name of SERVICES) {
      const workspace = existsSync(path.join(REPO_ROOT, 'services', name, 'package.json'));
      expect({ name, workspace }).toEqual({ name, workspace: true });
    }
    for (const u of definitions.users) {
      // Placeholders, documented in infra/rabbitmq/README.md.
      expect(u.password).toBe(`${u.name}-dev-only-change-me`);
      expect(u.tags).toEqual(u.name === 'admin' ? ['administrator'] : []);
    }
    expect(definitions.permissions.every((p) => p.vhost === 'warren')).toBe(true);
  });

  it('declares the heartbeat fanout exchange, the events topic exchange and no queues', () => {
    expect(definitions.exchanges).toEqual([
      expect.objectContaining({
        name: 'warren.heartbeat',
        vhost: 'warren',
        type: 'fanout',
        durable: true,
      }),
      expect.objectContaining({
        name: EVENTS_EXCHANGE,
        vhost: 'warren',
        type: 'topic',
        durable: true,
      }),
    ]);
    expect(definitions.queues).toEqual([]);
  });

  it.each(SERVICES)('lets service %s reach its own resources only', (name) => {
    const p = permissionsOf(name);
    const other = SERVICES.find((s) => s !== name) ?? 'other';
    const own = [name, `${name}.retry.1000`, `${name}.retry.30000`, `${name}.dlq`];
    for (const r of [...own, 'warren.heartbeat', EVENTS_EXCHANGE]) expect(r).toMatch(p.configure);
    for (const r of [...own, 'warren.heartbeat', EVENTS_EXCHANGE, 'amq.default'])
      expect(r).toMatch(p.write);
    // Reading the events exchange is what binding a queue to it takes (with write on the queue).
    for (const r of [...own, 'amq.rabbitmq.reply-to', EVENTS_EXCHANGE]) expect(r).toMatch(p.read);
    const foreign = [other, `${other}.dlq`, `${other}.retry.1000`, `${name}x`, `x${name}`];
    for (const r of [...foreign, 'warren.gateway.registry.g1', 'amq.default']) {
      expect(r).not.toMatch(p.configure);
    }
    for (const r of [...foreign, 'warren.gateway.registry.g1']) expect(r).not.toMatch(p.write);
    for (const r of [...foreign, 'warren.gateway.registry.g1', 'warren.heartbeat']) {
      expect(r).not.toMatch(p.read);
    }
  });

  it('lets the gateway publish, get replies and keep its registry, not touch service queues', () => {
    const p = permissionsOf('gateway');
    const registry = 'warren.gateway.registry.0b7c';
    for (const r of [registry, 'amq.gen-x1', 'warren.heartbeat', EVENTS_EXCHANGE])
      expect(r).toMatch(p.configure);
    for (const r of [registry, 'amq.default', 'warren.heartbeat', EVENTS_EXCHANGE])
      expect(r).toMatch(p.write);
    // It publishes events; it does not subscribe to them.
    expect(EVENTS_EXCHANGE).not.toMatch(p.read);
    for (const r of [registry, 'amq.rabbitmq.reply-to', 'warren.heartbeat'])
      expect(r).toMatch(p.read);
    for (const q of SERVICES.flatMap((s) => [s, `${s}.dlq`, `${s}.retry.1000`])) {
      expect(q).not.toMatch(p.configure);
      expect(q).not.toMatch(p.write);
      expect(q).not.toMatch(p.read);
    }
  });
});

// ---------------------------------------------------------------- live, on the local broker

jest.setTimeout(scaled(60_000));

const RUN = `permtest-${process.pid}-${Date.now().toString(36)}`;
const VHOST = `warren-${RUN}`;
const userOf = (name: string) => `${RUN}-${name}`;

function brokerAddress(): string {
  const url = new URL(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  return `${url.hostname}:${url.port || '5672'}`;
}

/** Runs rabbitmqctl against the local node (Debian's wrapper runs it as user rabbitmq). */
function rabbitmqctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('rabbitmqctl', ['-q', ...args], { stdio: 'pipe', timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new Error(
              'rabbitmqctl not found: the live permission check imports ' +
                'infra/rabbitmq/definitions.json into the local RabbitMQ ' +
                '(apt-get install -y rabbitmq-server)',
            )
          : err,
      ),
    );
    child.on('close', (code) =>
      code === 0
        ? resolve(stdout)
        : reject(new Error(`rabbitmqctl ${args.join(' ')} exited ${code}: ${stderr || stdout}`)),
    );
    child.stdin.end();
  });
}

async function connect(name: string): Promise<ChannelModel> {
  const password = encodeURIComponent(`${name}-dev-only-change-me`);
  return amqp.connect(
    `amqp://${userOf(name)}:${password}@${brokerAddress()}/${encodeURIComponent(VHOST)}`,
  );
}

/** Runs one operation on a fresh confirm channel: 'ok', or the AMQP reply code (403, 404). */
async function attempt(
  conn: ChannelModel,
  op: (ch: ConfirmChannel) => Promise<unknown>,
): Promise<'ok' | number> {
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => undefined);
  try {
    await op(ch);
    await ch.waitForConfirms();
    await ch.close();
    return 'ok';
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw err;
  }
}

const ACCESS_REFUSED = 403;

describe('definitions.json on a live broker', () => {
  let dir = '';
  const connections: ChannelModel[] = [];
  let gateway: ChannelModel;
  let echo: ChannelModel;
  let hello: ChannelModel;
  let wordcount: ChannelModel;

  beforeAll(async () => {
    const renamed = {
      ...definitions,
      users: definitions.users
        .filter((u) => u.name !== 'admin')
        .map((u) => ({ ...u, name: userOf(u.name) })),
      vhosts: [{ name: VHOST }],
      permissions: definitions.permissions
        .filter((p) => p.user !== 'admin')
        .map((p) => ({ ...p, user: userOf(p.user), vhost: VHOST })),
      exchanges: definitions.exchanges.map((e) => ({ ...e, vhost: VHOST })),
    };
    // Readable by the rabbitmq user: rabbitmqctl reads the file itself.
    dir = mkdtempSync(path.join(tmpdir(), 'warren-rabbitmq-'));
    chmodSync(dir, 0o755);
    const file = path.join(dir, 'definitions.json');
    writeFileSync(file, JSON.stringify(renamed), { mode: 0o644 });
    await rabbitmqctl(['import_definitions', file]);
    gateway = await connect('gateway');
    echo = await connect('echo');
    hello = await connect('hello');
    wordcount = await connect('wordcount');
    connections.push(gateway, echo, hello, wordcount);
  });

  afterAll(async () => {
    await Promise.allSettled(connections.map((c) => c.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
    // One Erlang VM for the whole clean-up (each rabbitmqctl start costs seconds); the plain
    // commands if the internal API ever differs.
    const users = definitions.users.map((u) => userOf(u.name));
    const bin = (v: string) => `<<"${v}">>`;
    const cleanup =
      `rabbit_vhost:delete(${bin(VHOST)}, <<"warren-tests">>), ` +
      `[catch rabbit_auth_backend_internal:delete_user(U, <<"warren-tests">>) ` +
      `|| U <- [${users.map(bin).join(', ')}]], ok.`;
    await rabbitmqctl(['eval', cleanup]).catch(() =>
      Promise.allSettled([
        rabbitmqctl(['delete_vhost', VHOST]),
        ...users.map((u) => rabbitmqctl(['delete_user', u])),
      ]),
    );
  });

  it('lets a service declare and use its topology, heartbeat and call others', async () => {
    // The topology exactly as the services declare it (libs/messaging).
    expect(
      await attempt(echo, async (ch) => {
        await ch.assertExchange(HEARTBEAT_EXCHANGE, 'fanout', { durable: true });
        await declareServiceTopology(ch, {
          name: 'echo',
          kind: 'durable',
          retryDelaysMs: [1000, 5000],
        });
        const { consumerTag } = await ch.consume('echo', () => undefined);
        await ch.cancel(consumerTag);
        ch.sendToQueue(retryQueueName('echo', 1000), Buffer.from('retry'));
        ch.sendToQueue('echo.dlq', Buffer.from('dead'));
        ch.publish(HEARTBEAT_EXCHANGE, '', Buffer.from('{}'));
        await ch.consume('amq.rabbitmq.reply-to', () => undefined, { noAck: true });
      }),
    ).toBe('ok');
    // Quorum queues dead-letter through the default exchange to <name>.dlq.
    expect(
      await attempt(wordcount, (ch) =>
        declareServiceTopology(ch, {
          name: 'wordcount',
          kind: 'durable',
          queueType: 'quorum',
          retryDelaysMs: [1000],
        }),
      ),
    ).toBe('ok');
    // The pika-compatible hello queue: non-durable, no arguments.
    expect(
      await attempt(hello, (ch) =>
        declareServiceTopology(ch, { name: 'hello', kind: 'plain', retryDelaysMs: [1000] }),
      ),
    ).toBe('ok');
  });

  it("refuses a service another service's queues and the gateway's", async () => {
    expect(await attempt(echo, (ch) => ch.assertQueue('hello', { durable: false }))).toBe(
      ACCESS_REFUSED,
    );
    expect(await attempt(echo, (ch) => ch.consume('hello', () => undefined))).toBe(ACCESS_REFUSED);
    expect(await attempt(echo, (ch) => ch.purgeQueue('hello'))).toBe(ACCESS_REFUSED);
    expect(await attempt(hello, (ch) => ch.assertQueue('echo.retry.1000', {}))).toBe(
      ACCESS_REFUSED,
    );
    expect(
      await attempt(echo, (ch) =>
        ch.assertQueue('warren.gateway.registry.x', { exclusive: true, autoDelete: true }),
      ),
    ).toBe(ACCESS_REFUSED);
  });

  it('lets the gateway keep its registry from heartbeats and call a service over direct reply-to', async () => {
    const ch = await gateway.createConfirmChannel();
    await ch.assertExchange('warren.heartbeat', 'fanout', { durable: true });
    const registry = 'warren.gateway.registry.test';
    await ch.assertQueue(registry, {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: { 'x-max-length': 10_000, 'x-message-ttl': 60_000 },
    });
    await ch.bindQueue(registry, 'warren.heartbeat', '');
    const beat = new Promise<string>((resolve) => {
      void ch.consume(registry, (m) => m && resolve(m.content.toString()), { noAck: true });
    });
    const reply = new Promise<ConsumeMessage>((resolve) => {
      void ch.consume('amq.rabbitmq.reply-to', (m) => m && resolve(m), { noAck: true });
    });

    // echo: heartbeat, and an RPC server that replies through the default exchange.
    const service = await echo.createConfirmChannel();
    await service.consume('echo', (m) => {
      if (!m) return;
      service.sendToQueue(m.properties.replyTo as string, Buffer.from(`re: ${m.content}`), {
        correlationId: m.properties.correlationId as string,
      });
      service.ack(m);
    });
    service.publish('warren.heartbeat', '', Buffer.from('{"service":"echo"}'));
    await service.waitForConfirms();
    expect(await beat).toBe('{"service":"echo"}');

    ch.publish('', 'echo', Buffer.from('ping'), {
      mandatory: true,
      replyTo: 'amq.rabbitmq.reply-to',
      correlationId: 'c1',
      expiration: '5000',
    });
    await ch.waitForConfirms();
    const answer = await reply;
    expect([answer.content.toString(), answer.properties.correlationId]).toEqual([
      're: ping',
      'c1',
    ]);
    await service.close();
    await ch.close();
  });

  it('lets a service subscribe its own queue to events and publish events, not bind another queue', async () => {
    expect(
      await attempt(echo, async (ch) => {
        await declareServiceTopology(ch, {
          name: 'echo',
          kind: 'durable',
          retryDelaysMs: [1000],
          events: ['order.*', 'audit.#'],
        });
        ch.publish(EVENTS_EXCHANGE, 'order.created', Buffer.from('{}'));
      }),
    ).toBe('ok');
    // hello's queue (declared by the first test) is not echo's to bind.
    expect(await attempt(echo, (ch) => ch.bindQueue('hello', EVENTS_EXCHANGE, '#'))).toBe(
      ACCESS_REFUSED,
    );
  });

  it('lets the gateway publish events, not subscribe a queue of its own to them', async () => {
    expect(
      await attempt(gateway, async (ch) => {
        await ch.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
        ch.publish(EVENTS_EXCHANGE, 'order.created', Buffer.from('{}'));
      }),
    ).toBe('ok');
    expect(
      await attempt(gateway, async (ch) => {
        await ch.assertQueue('warren.gateway.snoop', { exclusive: true });
        await ch.bindQueue('warren.gateway.snoop', EVENTS_EXCHANGE, '#');
      }),
    ).toBe(ACCESS_REFUSED);
  });

  it("refuses the gateway the services' queues", async () => {
    expect(await attempt(gateway, (ch) => ch.consume('echo', () => undefined))).toBe(
      ACCESS_REFUSED,
    );
    expect(await attempt(gateway, (ch) => ch.purgeQueue('echo.dlq'))).toBe(ACCESS_REFUSED);
    expect(await attempt(gateway, (ch) => ch.deleteQueue('echo'))).toBe(ACCESS_REFUSED);
    expect(await attempt(gateway, (ch) => ch.assertQueue('wordcount', { durable: true }))).toBe(
      ACCESS_REFUSED,
    );
  });
});
