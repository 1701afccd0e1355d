#!/usr/bin/env node
// `npm run new-service -- <name>`: scaffolds services/<name>/ and wires it into the build and docker-compose.yml.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

// The wire rule (pattern and reserved names) is @warren/protocol's; `npm run new-service` builds it first.
const { SERVICE_NAME_RULE, serviceNameProblem } = require('@warren/protocol');

const ROOT = path.resolve(__dirname, '..');
/** Names also taken in this repository: workspace packages, compose services, folders. */
const LAYOUT_NAMES = new Set([
  'protocol',
  'messaging',
  'observability',
  'service-kit',
  'dlq',
  'rabbitmq',
  'prometheus',
  'grafana',
  'libs',
  'services',
  'tools',
  'scripts',
  'tests',
  'infra',
  'docs',
  'node-modules',
]);

const USAGE = `Usage: npm run new-service -- <name> [--description TEXT] [--no-install]

Creates services/<name>/ (package.json, tsconfig.json, src/main.ts, src/service.ts, src/service.test.ts,
README.md), adds it to tsconfig.json's references and to docker-compose.yml, and runs npm install so
the workspace is linked and package-lock.json lists it. <name> is the queue name:
lowercase letters, digits and dashes, starting with a letter, at most 63 characters.

  --description TEXT   one line for package.json and the README
  --no-install         skip npm install (run it yourself before committing: CI uses npm ci)
  -h, --help           this text
`;

class UsageError extends Error {}

/** Throws UsageError saying why `name` cannot be a new service in `root`. */
function validateName(name, root = ROOT) {
  if (typeof name !== 'string' || name === '') throw new UsageError('a service name is required');
  if (name.startsWith('amq.'))
    throw new UsageError(`"${name}": names starting with amq. belong to RabbitMQ`);
  if (name.endsWith('.dlq') || name.includes('.retry.')) {
    throw new UsageError(`"${name}": .dlq and .retry.<ms>.v2 queues are created for each service`);
  }
  const problem = serviceNameProblem(name);
  if (problem === 'invalid')
    throw new UsageError(`invalid service name "${name}": ${SERVICE_NAME_RULE}`);
  if (problem === 'reserved' || LAYOUT_NAMES.has(name))
    throw new UsageError(`"${name}" is reserved`);
  const dir = path.join(root, 'services', name);
  if (fs.existsSync(dir)) {
    throw new UsageError(`services/${name} already exists; refusing to overwrite it`);
  }
  const compose = path.join(root, 'docker-compose.yml');
  if (fs.existsSync(compose)) {
    const YAML = require('yaml');
    const services = YAML.parse(fs.readFileSync(compose, 'utf8'))?.services ?? {};
    if (Object.prototype.hasOwnProperty.call(services, name)) {
      throw new UsageError(`docker-compose.yml already has a service "${name}"`);
    }
  }
}

const camel = (name) => name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
const title = (name) => name.charAt(0).toUpperCase() + name.slice(1);

/** The files of a new service, by path relative to services/<name>/. */
function serviceFiles(name, description, zodRange) {
  const input = `${camel(name)}Input`;
  const packageJson = {
    name: `@warren/${name}`,
    version: '0.1.0',
    private: true,
    description,
    main: 'dist/main.js',
    scripts: { start: 'node dist/main.js' },
    dependencies: { '@warren/service-kit': '0.1.0', zod: zodRange },
  };
  const tsconfig = `{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "rootDir": "src", "outDir": "dist" },
  "include": ["src"],
  "exclude": ["src/**/*.test.ts"],
  "references": [{ "path": "../../libs/service-kit" }]
}
`;
  const main = `// Process entry point of the ${name} service.
import { main } from '@warren/service-kit';
import service from './service';

main(service);
`;
  const service = `// ${name}: ${description}
import { z } from 'zod';
import { PermanentError, defineService } from '@warren/service-kit';

/** The JSON body this service accepts. Invalid input is never retried: 400 to a caller, DLQ otherwise. */
export const ${input} = z.object({
  text: z.string().min(1).max(10_000),
});

export type ${title(camel(name))}Input = z.infer<typeof ${input}>;

export default defineService({
  name: '${name}', // = its queue name; also what the gateway routes POST /v1/${name} to
  version: '0.1.0',
  description: '${description.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}',
  schema: ${input},
  // Defaults, shown for tuning: 5 deliveries, then ${name}.dlq; backoff through ${name}.retry.<ms>.v2.
  maxAttempts: 5,
  retryDelaysMs: [1000, 4000, 16000, 60000],
  handlerTimeoutMs: 30_000,
  // Runs at least once per message: make it idempotent (see docs/writing-a-service.md).
  handler: ({ text }, ctx) => {
    if (text.trim() === '') {
      // Permanent: retrying cannot help. A caller gets 422, a plain message goes to the DLQ.
      throw new PermanentError('text is blank', 'BLANK_TEXT', { status: 422 });
    }
    // Any other thrown error is transient: retried with backoff, then dead-lettered.
    return { service: '${name}', text, length: [...text].length, attempt: ctx.attempt };
  },
});
`;
  const test = `// ${name} against the real broker (AMQP_URL, else localhost, else testcontainers).
import { eventually, startServiceForTest, type ServiceHarness } from '@warren/service-kit/testing';
import service from './service';

jest.setTimeout(20_000); // broker round trips

describe('${name} service', () => {
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await startServiceForTest(service); // under a unique queue name
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('replies to a call', async () => {
    const reply = await h.call({ text: 'héllo' });
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ service: '${name}', text: 'héllo', length: 5, attempt: 1 });
  });

  it('answers invalid input with 400 application/problem+json, without retries', async () => {
    const reply = await h.call({ text: 42 });
    expect(reply.status).toBe(400);
    expect(reply.contentType).toBe('application/problem+json');
    expect(reply.json()).toMatchObject({ status: 400, title: 'Validation failed', type: 'urn:warren:error:validation-failed' });
    expect((await h.outcomes()).retry ?? 0).toBe(0);
  });

  it('answers a permanent error with its status', async () => {
    const reply = await h.call({ text: '   ' });
    expect(reply.status).toBe(422);
    expect(reply.json()).toMatchObject({ title: 'Blank text', detail: 'text is blank' });
  });

  it('dead-letters an invalid plain message with the error in its headers', async () => {
    const messageId = await h.send('not json');
    const dead = await h.nextDeadLetter();
    expect(dead.properties.messageId).toBe(messageId);
    expect(dead.headers).toMatchObject({ 'x-error-code': 'VALIDATION_FAILED', 'x-attempt': 1 });
    await eventually(async () => ((await h.outcomes()).rejected ?? 0) >= 1);
  });
});
`;
  const readme = `# ${name}

${description}

Queue \`${name}\` (durable), retries through \`${name}.retry.<ms>.v2\`, dead letters in \`${name}.dlq\`.
Generated by \`npm run new-service -- ${name}\`; see [Writing a service](../../docs/writing-a-service.md).

## Input and output

\`POST /v1/${name}?wait=true\` with \`{"text": "hello"}\` (1 to 10000 characters) replies
\`{"service": "${name}", "text": "hello", "length": 5, "attempt": 1}\`.

| input | caller waiting (\`?wait=true\`) | plain message |
|---|---|---|
| valid | 200 + the result | acked, outcome \`success\` |
| not JSON, or not \`{"text": string}\` | 400 problem+json \`VALIDATION_FAILED\` | \`${name}.dlq\`, outcome \`rejected\` |
| blank text | 422 problem+json \`BLANK_TEXT\` | \`${name}.dlq\`, outcome \`rejected\` |
| handler throws anything else | 500 problem+json, dead-lettered | retried (1 s, 4 s, 16 s, 60 s), then \`${name}.dlq\` |

## Run, call, test

\`\`\`sh
npm start                      # builds, then runs the gateway and every service, ${name} included
curl -s localhost:3000/v1/${name}?wait=true -H 'content-type: application/json' -d '{"text":"hello"}'
npx jest services/${name}      # its own test, against the real broker
npm run dlq -- list ${name}    # dead letters, with their error headers
\`\`\`

Environment: \`AMQP_URL\`, \`METRICS_PORT\` (ops port: \`/metrics\`, \`/healthz\`, \`/readyz\`),
\`LOG_LEVEL\`, \`PREFETCH\`, \`ADVERTISE_HOST\` (host in the metrics URL it announces).
`;
  return {
    'package.json': JSON.stringify(packageJson, null, 2) + '\n',
    'tsconfig.json': tsconfig,
    'src/main.ts': main,
    'src/service.ts': service,
    'src/service.test.ts': test,
    'README.md': readme,
  };
}

/** tsconfig.json text with services/<name> appended to its references (unchanged if present). */
function addTsconfigReference(text, name) {
  let config;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw new Error(
      `tsconfig.json is not plain JSON (${err.message}); add {"path": "services/${name}"} by hand`,
      { cause: err },
    );
  }
  config.references = config.references ?? [];
  const ref = `services/${name}`;
  if (config.references.some((r) => r.path === ref || r.path === `./${ref}`)) return text;
  config.references.push({ path: ref });
  return JSON.stringify(config, null, 2) + '\n';
}

const indentOf = (line) => /^ */.exec(line)[0].length;
/** A line inside a key's value at `indent`: blank, deeper, or a list item at the key's own indent. */
const isChild = (line, indent) =>
  line.trim() === '' ||
  indentOf(line) > indent ||
  (indentOf(line) === indent && line.trim().startsWith('- '));

/** Lines without `key:` and its value. */
function withoutKey(lines, key) {
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    if (new RegExp(`^\\s+${key}:`).test(lines[i])) {
      const indent = indentOf(lines[i]);
      while (i + 1 < lines.length && lines[i + 1].trim() !== '' && isChild(lines[i + 1], indent))
        i++;
      continue;
    }
    out.push(lines[i]);
  }
  return out;
}

/**
 * docker-compose.yml text with a `<name>` service modeled on the `echo` block: same image/build and
 * settings with echo renamed, METRICS_PORT 9400, ADVERTISE_HOST <name>, AMQP_URL as echo's, and no
 * host `ports:` (Prometheus scrapes inside the compose network). The rest of the file is untouched.
 */
function addComposeService(text, name) {
  const YAML = require('yaml');
  const before = YAML.parse(text, { merge: true });
  if (!before?.services || typeof before.services !== 'object') {
    throw new Error('docker-compose.yml has no services: mapping');
  }
  if (before.services[name]) throw new Error(`docker-compose.yml already has a service "${name}"`);
  if (!before.services.echo)
    throw new Error('docker-compose.yml has no echo service to model the new one on');
  const lines = text.split('\n');
  const servicesAt = lines.findIndex((l) => /^services:\s*(#.*)?$/.test(l));
  if (servicesAt < 0) throw new Error('docker-compose.yml: no top-level "services:" line');
  const echoAt = lines.findIndex((l, i) => i > servicesAt && /^\s+echo:\s*(#.*)?$/.test(l));
  if (echoAt < 0) throw new Error('docker-compose.yml: no "echo:" block under services');
  const keyIndent = indentOf(lines[echoAt]);
  let end = echoAt + 1;
  while (end < lines.length && (lines[end].trim() === '' || indentOf(lines[end]) > keyIndent))
    end++;
  // Trailing blank lines belong to the gap, not the block.
  while (end > echoAt + 1 && lines[end - 1].trim() === '') end--;
  let block = lines.slice(echoAt, end).map((l) => l.replace(/\becho\b/g, name));

  // Drop host port publishing (each copy would claim the same host port).
  block = withoutKey(block, 'ports');

  // echo's URL with echo's user swapped for the new service's own (see addRabbitUser).
  const echoUrl = envOf(before.services.echo).AMQP_URL;
  const wanted = {
    METRICS_PORT: '9400',
    ADVERTISE_HOST: name,
    AMQP_URL: echoUrl
      ? String(echoUrl).replace(/\becho\b/g, name)
      : 'amqp://guest:guest@rabbitmq:5672',
  };
  const quote = (v) => `'${v.replace(/'/g, "''")}'`;
  const envAt = block.findIndex((l) => /^\s+environment:\s*(#.*)?$/.test(l));
  if (envAt < 0) {
    const inner = ' '.repeat(indentOf(block[1] ?? '') || keyIndent + 2);
    block.splice(
      1,
      0,
      `${inner}environment:`,
      ...Object.entries(wanted).map(([k, v]) => `${inner}  ${k}: ${quote(v)}`),
    );
  } else {
    const envIndent = indentOf(block[envAt]);
    let envEnd = envAt + 1;
    while (envEnd < block.length && isChild(block[envEnd], envIndent)) envEnd++;
    const entries = block
      .slice(envAt + 1, envEnd)
      .filter((l) => l.trim() && !l.trim().startsWith('#'));
    const listStyle = entries.length > 0 && entries.every((l) => l.trim().startsWith('-'));
    const entryIndent = ' '.repeat(entries.length ? indentOf(entries[0]) : envIndent + 2);
    const render = (k, v) =>
      listStyle ? `${entryIndent}- ${k}=${v}` : `${entryIndent}${k}: ${quote(v)}`;
    for (const [k, v] of Object.entries(wanted)) {
      const at = block.findIndex(
        (l, i) => i > envAt && i < envEnd && new RegExp(`^\\s*(- )?["']?${k}["']?\\s*[:=]`).test(l),
      );
      if (at >= 0) block[at] = render(k, v);
      else block.splice(envEnd++, 0, render(k, v));
    }
  }

  // Insert after the last service of the services: mapping.
  let insertAt = servicesAt + 1;
  for (let i = servicesAt + 1; i < lines.length; i++) {
    if (lines[i].trim() === '' || lines[i].trim().startsWith('#')) continue;
    if (indentOf(lines[i]) === 0) break;
    insertAt = i + 1;
  }
  const out = [...lines.slice(0, insertAt), '', ...block, ...lines.slice(insertAt)].join('\n');

  // The result must parse, keep every other service as it was, and carry the wanted settings.
  const after = YAML.parse(out, { merge: true });
  const { [name]: added, ...others } = after.services ?? {};
  if (!added || JSON.stringify(others) !== JSON.stringify(before.services)) {
    throw new Error('could not insert the service block cleanly');
  }
  const env = envOf(added);
  for (const [k, v] of Object.entries(wanted)) {
    if (String(env[k]) !== v) throw new Error(`inserted block lacks ${k}=${v}`);
  }
  return { text: out, block: block.join('\n') };
}

/**
 * infra/rabbitmq/definitions.json text with a user and vhost permissions for `<name>` modeled on
 * echo's: the same grants on <name>, <name>.retry.*, <name>.dlq instead of echo's queues, and a
 * development placeholder password like echo's. Throws when there is no echo user to copy.
 */
function addRabbitUser(text, name) {
  const defs = JSON.parse(text);
  const swap = (v) => (typeof v === 'string' ? v.replace(/\becho\b/g, name) : v);
  const echoUser = (defs.users ?? []).find((u) => u.name === 'echo');
  if (!echoUser) throw new Error('no echo user to model the new one on');
  if (typeof echoUser.password !== 'string' || !/\becho\b/.test(echoUser.password)) {
    throw new Error("echo's password is not a development placeholder");
  }
  if (defs.users.some((u) => u.name === name)) return text;
  defs.users.push({ ...echoUser, name, password: swap(echoUser.password) });
  for (const perm of (defs.permissions ?? []).filter((p) => p.user === 'echo')) {
    defs.permissions.push(Object.fromEntries(Object.entries(perm).map(([k, v]) => [k, swap(v)])));
  }
  for (const perm of (defs.topic_permissions ?? []).filter((p) => p.user === 'echo')) {
    defs.topic_permissions.push(
      Object.fromEntries(Object.entries(perm).map(([k, v]) => [k, swap(v)])),
    );
  }
  return JSON.stringify(defs, null, 2) + '\n';
}

/** Formats files with the repository's Prettier config, so they pass `npm run lint`. */
function prettierWrite(root, files) {
  const bin = path.join(root, 'node_modules/prettier/bin/prettier.cjs');
  if (!fs.existsSync(bin)) return false;
  execFileSync(process.execPath, [bin, '--write', '--log-level', 'warn', ...files], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return true;
}

/** A compose service's environment as a map, from either the map or the KEY=value list form. */
function envOf(svc) {
  const env = svc?.environment;
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((e) => {
        const s = String(e);
        const i = s.indexOf('=');
        return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
      }),
    );
  }
  return env && typeof env === 'object' ? env : {};
}

function zodRange(root) {
  try {
    const kit = JSON.parse(
      fs.readFileSync(path.join(root, 'libs/service-kit/package.json'), 'utf8'),
    );
    return kit.dependencies?.zod ?? '^4.0.0';
  } catch {
    return '^4.0.0';
  }
}

/**
 * Kubernetes: infra/k8s/<name>.yaml modeled on echo.yaml (Deployment, PDB, ScaledObject, ...) and
 * the kustomization's resources and images entries. Returns path -> new text.
 */
function addK8sService(root, name, description) {
  const dir = path.join(root, 'infra/k8s');
  const template = fs.readFileSync(path.join(dir, 'echo.yaml'), 'utf8');
  const lines = template.replace(/\becho\b/g, name).split('\n');
  lines[0] = `# ${name}: ${description}`;
  const kustomizationPath = path.join(dir, 'kustomization.yaml');
  const k = fs.readFileSync(kustomizationPath, 'utf8').split('\n');
  let last = -1;
  k.forEach((line, i) => {
    if (/^ {2}- [a-z0-9-]+\.yaml$/.test(line)) last = i;
  });
  if (last < 0) throw new Error('kustomization.yaml has no resources list');
  k.splice(last + 1, 0, `  - ${name}.yaml`);
  while (k.length && k[k.length - 1] === '') k.pop();
  k.push(`  - name: warren-${name}`, '    newTag: dev', '');
  return new Map([
    [path.join(dir, `${name}.yaml`), lines.join('\n')],
    [kustomizationPath, k.join('\n')],
  ]);
}

/**
 * Creates the service. Everything is checked and computed first; files are written only when all
 * steps can succeed. Resolves with what was done and any warnings (a file absent, npm skipped).
 */
async function generate(name, options = {}) {
  const root = options.root ?? ROOT;
  const log = options.log ?? ((line) => process.stdout.write(line + '\n'));
  validateName(name, root);
  const description = (options.description ?? `The ${name} consumer service`)
    .replace(/\s+/g, ' ')
    .trim();
  const dir = path.join(root, 'services', name);
  const warnings = [];
  /** path -> new content; formatted, then written together. */
  const writes = new Map();
  for (const [rel, content] of Object.entries(serviceFiles(name, description, zodRange(root)))) {
    writes.set(path.join(dir, rel), content);
  }
  const tsconfigPath = path.join(root, 'tsconfig.json');
  writes.set(tsconfigPath, addTsconfigReference(fs.readFileSync(tsconfigPath, 'utf8'), name));
  const composePath = path.join(root, 'docker-compose.yml');
  if (fs.existsSync(composePath)) {
    try {
      writes.set(composePath, addComposeService(fs.readFileSync(composePath, 'utf8'), name).text);
    } catch (err) {
      warnings.push(
        `docker-compose.yml not changed: ${err.message}; add a "${name}" service by hand`,
      );
    }
  } else {
    warnings.push('docker-compose.yml not found: no compose service added');
  }
  const definitionsPath = path.join(root, 'infra/rabbitmq/definitions.json');
  if (fs.existsSync(definitionsPath)) {
    try {
      writes.set(definitionsPath, addRabbitUser(fs.readFileSync(definitionsPath, 'utf8'), name));
    } catch (err) {
      warnings.push(
        `infra/rabbitmq/definitions.json not changed: ${err.message}; add a "${name}" user by hand`,
      );
    }
  }

  if (fs.existsSync(path.join(root, 'infra/k8s/echo.yaml'))) {
    try {
      for (const [file, text] of addK8sService(root, name, description)) writes.set(file, text);
    } catch (err) {
      warnings.push(`infra/k8s not changed: ${err.message}; add a "${name}" manifest by hand`);
    }
  }

  fs.mkdirSync(path.join(root, 'services'), { recursive: true });
  fs.mkdirSync(dir); // fails if it appeared meanwhile: never overwrite
  const created = [];
  try {
    for (const [file, content] of writes) {
      if (!file.startsWith(dir + path.sep)) continue;
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content, { flag: 'wx' });
      created.push(path.relative(dir, file));
    }
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  log(`created services/${name}/ (${created.join(', ')})`);
  for (const [file, content] of writes) {
    if (file.startsWith(dir + path.sep)) continue;
    fs.writeFileSync(file, content);
    log(`updated ${path.relative(root, file)}`);
  }
  try {
    if (!prettierWrite(root, [...writes.keys()]))
      warnings.push('prettier not found: files not formatted');
  } catch {
    warnings.push('prettier failed: run npm run format');
  }
  if (options.install !== false) {
    log('running npm install (links the workspace, updates package-lock.json)');
    try {
      execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
    } catch {
      warnings.push('npm install failed: run it before building or committing');
    }
  } else {
    warnings.push('npm install skipped: run it before committing (CI runs npm ci)');
  }
  return { dir, files: created, warnings };
}

async function main() {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      allowPositionals: true,
      strict: true,
      options: {
        description: { type: 'string' },
        'no-install': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`new-service: ${err.message}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`new-service: give exactly one service name (see --help)\n`);
    process.exit(2);
  }
  const [name] = positionals;
  try {
    const result = await generate(name, {
      description: values.description,
      install: !values['no-install'],
    });
    for (const w of result.warnings) process.stderr.write(`new-service: warning: ${w}\n`);
    process.stdout.write(
      `\nNext: edit services/${name}/src/service.ts, then\n` +
        `  npx jest services/${name}   # its test, against the real broker\n` +
        `  npm start                     # ${name} is live: POST /v1/${name}, GET /v1/services\n`,
    );
  } catch (err) {
    process.stderr.write(`new-service: ${err.message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}

module.exports = {
  validateName,
  serviceFiles,
  addTsconfigReference,
  addComposeService,
  addK8sService,
  addRabbitUser,
  generate,
  UsageError,
};

if (require.main === module) void main();
