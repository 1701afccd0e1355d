// new-service end to end, in a temporary copy of the repository: generate, build, run the generated
// service's own test, then `npm start` (scripts/start.js) it with the gateway and call it over HTTP.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import YAML from 'yaml';
import { retryQueueName } from '@warren/protocol';
import { testAmqpUrl, uniqueName } from '../support/broker';
import { ROOT, freePort, startNode, stopAll, type Proc } from '../support/processes';
import { eventually, scaled } from '../support/time';

const run = promisify(execFile);

/** The working tree's files (tracked and untracked, not ignored) copied to `dest`. */
async function copyRepo(dest: string): Promise<void> {
  const { stdout } = await run(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  for (const rel of stdout.split('\0').filter(Boolean)) {
    const from = path.join(ROOT, rel);
    if (!fs.existsSync(from) || fs.statSync(from).isDirectory()) continue;
    fs.mkdirSync(path.dirname(path.join(dest, rel)), { recursive: true });
    fs.copyFileSync(from, path.join(dest, rel));
  }
}

/**
 * node_modules for the copy without installing anything: every package links to the original's,
 * except the workspace packages (@warren/*), which link to the copy's own libs and services,
 * as npm's workspace links do.
 */
function linkNodeModules(dest: string): void {
  const nm = path.join(dest, 'node_modules');
  fs.mkdirSync(path.join(nm, '@warren'), { recursive: true });
  for (const entry of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
    if (entry === '@warren') continue;
    fs.symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(nm, entry));
  }
  for (const group of ['libs', 'services', 'tools']) {
    const dir = path.join(dest, group);
    if (!fs.existsSync(dir)) continue;
    for (const pkg of fs.readdirSync(dir)) {
      const manifest = path.join(dir, pkg, 'package.json');
      if (!fs.existsSync(manifest)) continue;
      const { name } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name: string };
      const link = path.join(nm, name);
      if (name.startsWith('@warren/') && !fs.existsSync(link)) {
        fs.symlinkSync(path.join('..', '..', group, pkg), link);
      }
    }
  }
}

const node = (cwd: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  run(process.execPath, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 });

const GATEWAY_DIST = path.join(ROOT, 'services/gateway/dist/main.js');

describe('npm run new-service (end to end)', () => {
  let tmp: string;
  let url: string;
  const name = uniqueName('gen');
  const procs: Proc[] = [];

  beforeAll(async () => {
    url = await testAmqpUrl();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-gen-'));
    await copyRepo(tmp);
    linkNodeModules(tmp);
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await stopAll();
    const conn = await connect(url);
    const ch = await conn.createChannel();
    for (const q of [
      name,
      `${name}.dlq`,
      ...[1000, 4000, 16000, 60000].map((d) => retryQueueName(name, d)),
    ]) {
      await ch.deleteQueue(q).catch(() => undefined);
    }
    await conn.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(
    'generates a service that is lint-clean, builds and passes its own test',
    async () => {
      // 1. Generate as `npm run new-service` does: build @warren/protocol (the generator reads the
      // name rule from it), then run the script (npm install is the one step skipped: the copy's
      // node_modules are links).
      await node(tmp, ['node_modules/typescript/bin/tsc', '-b', 'libs/protocol']);
      const gen = await node(tmp, [
        'tools/new-service/new-service.js',
        name,
        '--no-install',
        '--description',
        'Made by the e2e test',
        '--events',
        `${name}.*`,
      ]);
      expect(gen.stdout).toContain(`created services/${name}/`);
      expect(gen.stderr).toContain('npm install skipped');
      for (const f of [
        'package.json',
        'tsconfig.json',
        'README.md',
        'src/main.ts',
        'src/service.ts',
        'src/service.test.ts',
      ]) {
        expect(fs.existsSync(path.join(tmp, 'services', name, f))).toBe(true);
      }
      const tsconfig = JSON.parse(fs.readFileSync(path.join(tmp, 'tsconfig.json'), 'utf8')) as {
        references: { path: string }[];
      };
      expect(tsconfig.references).toContainEqual({ path: `services/${name}` });
      if (fs.existsSync(path.join(tmp, 'docker-compose.yml'))) {
        const compose = YAML.parse(
          fs.readFileSync(path.join(tmp, 'docker-compose.yml'), 'utf8'),
        ) as {
          services: Record<string, { environment: Record<string, string> }>;
        };
        expect(compose.services[name]?.environment).toMatchObject({
          METRICS_PORT: '9400',
          ADVERTISE_HOST: name,
        });
      }
      // Refuses a second time, changing nothing.
      const again = await node(tmp, [
        'tools/new-service/new-service.js',
        name,
        '--no-install',
      ]).catch((err: { code: number; stderr: string }) => err);
      expect(again).toMatchObject({
        code: 2,
        stderr: `new-service: services/${name} already exists; refusing to overwrite it\n`,
      });
      fs.symlinkSync(
        path.join('..', '..', 'services', name),
        path.join(tmp, 'node_modules/@warren', name),
      );

      // 2. It is lint-clean and builds with the workspace's project references.
      await Promise.all([
        node(tmp, [
          'node_modules/prettier/bin/prettier.cjs',
          '--check',
          `services/${name}`,
          'tsconfig.json',
        ]),
        node(tmp, ['node_modules/eslint/bin/eslint.js', `services/${name}`]),
        node(tmp, ['node_modules/typescript/bin/tsc', '-b', `services/${name}`]),
      ]);
      expect(fs.existsSync(path.join(tmp, 'services', name, 'dist/main.js'))).toBe(true);

      // 3. Its own test passes against the real broker.
      const jest = await node(tmp, ['node_modules/jest/bin/jest.js', '--ci', `services/${name}/`], {
        ...process.env,
        AMQP_URL: url,
      });
      expect(jest.stderr).toMatch(/Tests:\s+4 passed, 4 total/);
      // About 20 s on an idle machine; generous for a loaded CI box.
    },
    scaled(120_000),
  );

  // tests/global-setup.js builds before any test runs, so the gateway's dist is there.
  it(
    'is live after `npm start`: callable through the gateway, registered, in /sd/prometheus',
    async () => {
      // The gateway as built in the working tree (its sources may be mid-change; its dist runs).
      fs.cpSync(path.dirname(GATEWAY_DIST), path.join(tmp, 'services/gateway/dist'), {
        recursive: true,
      });
      await node(tmp, ['node_modules/typescript/bin/tsc', '-b', 'libs/service-kit']);
      const port = await freePort();
      const base = await freePort();
      const start = startNode(
        path.relative(ROOT, path.join(tmp, 'scripts/start.js')),
        {
          AMQP_URL: url,
          PORT: String(port),
          METRICS_PORT_BASE: String(base),
          HEARTBEAT_INTERVAL_MS: '500',
        },
        ['gateway', name],
      );
      procs.push(start);
      await start.waitFor(/2\/2 processes ready/, 30_000);

      const api = `http://127.0.0.1:${port}`;
      let res: Response | undefined;
      await eventually(
        async () => {
          res = await fetch(`${api}/v1/${name}?wait=true`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ text: 'through the gateway' }),
          });
          return res.status !== 404 && res.status !== 503;
        },
        15_000,
        `${name} routable through the gateway`,
      );
      expect(res?.status).toBe(200);
      expect(await res?.json()).toEqual({
        service: name,
        text: 'through the gateway',
        length: 19,
        attempt: 1,
      });

      const invalid = await fetch(`${api}/v1/${name}?wait=true`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 7 }),
      });
      expect(invalid.status).toBe(400);
      expect(invalid.headers.get('content-type')).toMatch(/^application\/problem\+json/);

      // The registry learns of the service from its heartbeats: poll instead of racing the first one.
      let services = '';
      await eventually(
        async () =>
          (services = await (await fetch(`${api}/v1/services`)).text()).includes(`"${name}"`),
        15_000,
        `${name} in /v1/services`,
      );
      expect(services).toContain(`"${name}"`);
      // Prometheus HTTP SD is on the gateway's ops port (the first of METRICS_PORT_BASE's).
      const sd = (await (await fetch(`http://127.0.0.1:${base}/sd/prometheus`)).json()) as {
        labels: Record<string, string>;
      }[];
      const group = sd.find((g) => g.labels.service === name) as
        { targets: string[]; labels: Record<string, string> } | undefined;
      expect(group).toBeDefined();

      // --events: subscribed, so an event through the gateway is routed (202, not 404) and handled.
      const event = await fetch(`${api}/v1/events/${name}.created`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'an event' }),
      });
      expect(event.status).toBe(202);
      const metricsUrl = `http://${group?.targets[0] ?? ''}${group?.labels.__metrics_path__ ?? '/metrics'}`;
      await eventually(
        async () =>
          new RegExp(
            `mq_events_handled_total\\{queue="${name}",pattern="${name}\\.\\*",outcome="success"[^}]*\\} 1`,
          ).test(await (await fetch(metricsUrl)).text()),
        15_000,
        `the event handled by ${name}`,
      );
    },
    scaled(120_000),
  );
});
