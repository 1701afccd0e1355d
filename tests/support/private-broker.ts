// A private RabbitMQ node for disruptive tests: own node name, ports and data dir; stopped by PID.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './time';

const run = promisify(execFile);
const SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

export interface PrivateBroker {
  nodeName: string;
  port: number;
  url: string;
  dataDir: string;
  pid(): number | undefined;
  ctl(...args: string[]): Promise<string>;
  /** Stops the RabbitMQ application (connections drop; the node stays up). */
  stopApp(): Promise<void>;
  startApp(): Promise<void>;
  /** Stops the node (by rabbitmqctl, then by PID) and removes its data dir. */
  stop(): Promise<void>;
}

export interface PrivateBrokerOptions {
  /**
   * Erlang terms for the node's advanced.config, e.g.
   * `[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 1000}]}].` (settings rabbitmq.conf lacks).
   */
  advancedConfig?: string;
}

let seq = 0;

/** Free ports next to a base picked from the PID, so parallel test files do not collide. */
function ports(): { amqp: number; dist: number; mgmt: number; prom: number } {
  const base = 20000 + ((process.pid * 7 + seq++ * 101) % 9000) * 4;
  return { amqp: base, dist: base + 1, mgmt: base + 2, prom: base + 3 };
}

export async function startPrivateBroker(
  label = 'warren-test',
  options: PrivateBrokerOptions = {},
): Promise<PrivateBroker> {
  if (!fs.existsSync(SERVER))
    throw new Error(`${SERVER} not found: install Debian's rabbitmq-server`);
  const p = ports();
  const nodeName = `${label}-${process.pid}-${seq}@localhost`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rmqnode-'));
  fs.chmodSync(dataDir, 0o777);
  execFileSync('chown', ['rabbitmq:rabbitmq', dataDir]);
  const env = [
    `RABBITMQ_NODENAME=${nodeName}`,
    `RABBITMQ_NODE_PORT=${p.amqp}`,
    `RABBITMQ_DIST_PORT=${p.dist}`,
    `RABBITMQ_MNESIA_BASE=${dataDir}/mnesia`,
    `RABBITMQ_LOG_BASE=${dataDir}/log`,
    `RABBITMQ_PID_FILE=${dataDir}/pid`,
    `RABBITMQ_ENABLED_PLUGINS_FILE=${dataDir}/plugins`,
    // The machine's /etc/rabbitmq/rabbitmq.conf pins the listener to 5672; this node gets its own file.
    `RABBITMQ_CONFIG_FILE=${dataDir}/rabbitmq.conf`,
    `RABBITMQ_ADVANCED_CONFIG_FILE=${dataDir}/advanced.config`,
  ].join(' ');
  fs.writeFileSync(path.join(dataDir, 'advanced.config'), `${options.advancedConfig ?? '[].'}\n`);
  fs.writeFileSync(path.join(dataDir, 'plugins'), '[].\n');
  fs.writeFileSync(
    path.join(dataDir, 'rabbitmq.conf'),
    [
      `listeners.tcp.local = 127.0.0.1:${p.amqp}`,
      `management.tcp.port = ${p.mgmt}`,
      `prometheus.tcp.port = ${p.prom}`,
      'loopback_users.guest = true',
      '',
    ].join('\n'),
  );
  execFileSync('chown', ['-R', 'rabbitmq:rabbitmq', dataDir]);
  await run('su', ['rabbitmq', '-s', '/bin/sh', '-c', `${env} ${SERVER} -detached`]);
  const ctl = async (...args: string[]) =>
    (await run('rabbitmqctl', ['-n', nodeName, ...args])).stdout;
  await eventually(
    () => ctl('await_startup').then(() => true),
    60_000,
    `private broker ${nodeName} to start`,
    { intervalMs: 500, retryErrors: true },
  );
  const pid = () => {
    try {
      return Number(fs.readFileSync(path.join(dataDir, 'pid'), 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  };
  return {
    nodeName,
    port: p.amqp,
    url: `amqp://guest:guest@127.0.0.1:${p.amqp}`,
    dataDir,
    pid,
    ctl,
    stopApp: async () => void (await ctl('stop_app')),
    startApp: async () => {
      await ctl('start_app');
      await ctl('await_startup');
    },
    stop: async () => {
      const nodePid = pid();
      await ctl('stop').catch(() => undefined);
      if (nodePid) {
        try {
          process.kill(nodePid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
