// The libraries as a team outside this repository gets them: packed with npm pack, installed from the tarballs, a service on them called through the gateway.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { testAmqpUrl, uniqueName } from '../support/broker';
import { ROOT, startGatewayChild, startNode, stopAll } from '../support/processes';
import { eventually, scaled } from '../support/time';
import { createVhost, type TestVhost } from '../support/vhost';

const run = promisify(execFile);
const LIBS = ['protocol', 'observability', 'messaging', 'service-kit'];
jest.setTimeout(scaled(180_000));

let dir: string;
let vhost: TestVhost;

/** The service a team writes in its own repository: a dozen lines on the packed libraries. */
const SERVICE_TS = `import { z } from 'zod';
import { defineService, main } from '@warren/service-kit';

const service = defineService({
  name: process.env.SERVICE_NAME ?? 'greeter',
  schema: z.object({ name: z.string().min(1) }),
  events: ['greeting.requested'],
  handler: (input, ctx) => {
    if (ctx.event) ctx.log.info({ event: ctx.event, name: input.name }, 'event handled');
    return { greeting: \`Hello, \${input.name}!\` };
  },
});

main(service);
`;

beforeAll(async () => {
  vhost = await createVhost(await testAmqpUrl(), 'warren-outside');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-outside-'));
  const tarballs = path.join(dir, 'tarballs');
  fs.mkdirSync(tarballs);
  const workspaces = LIBS.flatMap((l) => ['-w', `libs/${l}`]);
  await run('npm', ['pack', '--pack-destination', tarballs, ...workspaces], { cwd: ROOT });
  const team = path.join(dir, 'team');
  fs.mkdirSync(path.join(team, 'src'), { recursive: true });
  fs.writeFileSync(
    path.join(team, 'package.json'),
    JSON.stringify({ name: 'team-service', private: true }),
  );
  const packed = fs.readdirSync(tarballs).map((f) => path.join(tarballs, f));
  expect(packed.map((f) => path.basename(f)).sort()).toEqual(
    LIBS.map((l) => `warren-${l}-0.1.0.tgz`).sort(),
  );
  // From the tarballs and the registry (the npm cache first): nothing links into this repository.
  await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      ...packed,
      '@types/node@20',
      'zod@4',
    ],
    { cwd: team, maxBuffer: 16 * 1024 * 1024 },
  );
  fs.writeFileSync(path.join(team, 'src/service.ts'), SERVICE_TS);
  fs.writeFileSync(
    path.join(team, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'Node16',
        moduleResolution: 'Node16',
        strict: true,
        outDir: 'dist',
        types: ['node'],
      },
      include: ['src'],
    }),
  );
});

afterAll(async () => {
  await stopAll();
  await vhost?.remove();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it('installs outside the workspace, type-checks, and serves calls through the gateway', async () => {
  const team = path.join(dir, 'team');
  for (const lib of LIBS) {
    const installed = path.join(team, 'node_modules/@warren', lib);
    // A real copy of the package (not a workspace link), with its README and built code only.
    expect(fs.lstatSync(installed).isSymbolicLink()).toBe(false);
    expect(fs.existsSync(path.join(installed, 'README.md'))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'src'))).toBe(false);
  }
  // The exports maps give the types: the team's strict TypeScript build passes.
  await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', team]);
  const testing = await run(
    process.execPath,
    [
      '-e',
      "process.stdout.write(typeof require('@warren/service-kit/testing').startServiceForTest)",
    ],
    { cwd: team },
  );
  expect(testing.stdout).toBe('function');

  const name = uniqueName('outside');
  // On free ports, ready (a port taken meanwhile is retried).
  const { port } = await startGatewayChild(vhost.url, { GATEWAY_REGISTRY_GRACE_MS: '0' });
  const service = startNode(path.relative(ROOT, path.join(team, 'dist/service.js')), {
    AMQP_URL: vhost.url,
    SERVICE_NAME: name,
    METRICS_PORT: '0',
    HEARTBEAT_INTERVAL_MS: '500',
  });
  await service.waitFor(/service ready/, 30_000);

  let res: Response | undefined;
  await eventually(
    async () => {
      res = await fetch(`http://127.0.0.1:${port}/v1/${name}?wait=true`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'team' }),
      });
      return res.status === 200;
    },
    15_000,
    `${name} answering through the gateway`,
  );
  expect(await res?.json()).toEqual({ greeting: 'Hello, team!' });
  const invalid = await fetch(`http://127.0.0.1:${port}/v1/${name}?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: '' }),
  });
  expect(invalid.status).toBe(400);
  expect(await invalid.json()).toMatchObject({ type: 'urn:warren:error:validation-failed' });

  // Its event subscription: an event through the gateway reaches it, with ctx.event set.
  const event = await fetch(`http://127.0.0.1:${port}/v1/events/greeting.requested`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'events' }),
  });
  expect(event.status).toBe(202);
  await service.waitFor(
    /"event":"greeting\.requested","name":"events"[^\n]*"msg":"event handled"/,
    15_000,
  );
});
