#!/usr/bin/env node
// `npm run new-service -- <name>`: services/<name>/ from the template beside this file, wired into the
// build, docker-compose.yml, the RabbitMQ definitions and infra/k8s.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

// The wire rule (pattern and reserved names) is @warren/protocol's; `npm run new-service` builds it first.
const {
  SERVICE_NAME_RULE,
  serviceNameProblem,
  topicPatternProblem,
  MAX_EVENT_PATTERNS,
} = require('@warren/protocol');

const YAML = require('yaml');

const ROOT = path.resolve(__dirname, '..', '..');
/** Names also taken in this repository: workspace packages, compose services, folders. */
const LAYOUT_NAMES = new Set([
  'protocol',
  'messaging',
  'observability',
  'service-kit',
  'dlq',
  'bench',
  'reports',
  'new-service',
  'template-service',
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

const USAGE = `Usage: npm run new-service -- <name> [--description TEXT] [--events PATTERNS] [--no-install]

Creates services/<name>/ from tools/new-service/template (package.json, tsconfig.json, README.md,
src/main.ts, src/service.ts, src/service.test.ts: the service template-service, renamed), adds it
to tsconfig.json's references, docker-compose.yml, infra/rabbitmq/definitions.json and infra/k8s,
and runs npm install so the workspace is linked and package-lock.json lists it. <name> is the
queue name: lowercase letters, digits and dashes, starting with a letter, at most 63 characters.

  --description TEXT   one line for package.json and the README
  --events PATTERNS    comma-separated event topic patterns to subscribe to ('order.*,audit.#'):
                       the service's queue is bound to them on warren.events, ctx.event is the topic
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
  const workspace = ['libs', 'tools'].some((group) => fs.existsSync(path.join(root, group, name)));
  if (problem === 'reserved' || LAYOUT_NAMES.has(name) || workspace)
    throw new UsageError(`"${name}" is reserved`);
  const dir = path.join(root, 'services', name);
  if (fs.existsSync(dir)) {
    throw new UsageError(`services/${name} already exists; refusing to overwrite it`);
  }
  const compose = path.join(root, 'docker-compose.yml');
  if (fs.existsSync(compose)) {
    const services = YAML.parse(fs.readFileSync(compose, 'utf8'))?.services ?? {};
    if (Object.prototype.hasOwnProperty.call(services, name)) {
      throw new UsageError(`docker-compose.yml already has a service "${name}"`);
    }
  }
}

const camel = (name) => name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
const title = (name) => name.charAt(0).toUpperCase() + name.slice(1);

/**
 * The template: a working service named `template-service` (tools/new-service/template), type-checked
 * by `tsc -b` (tools/new-service/tsconfig.json) and tested by `npm test` like any service.
 */
const TEMPLATE_DIR = path.join(__dirname, 'template');
const TEMPLATE_NAME = 'template-service';
/** The template's description, which is also the default one: `The <name> consumer service`. */
const TEMPLATE_DESCRIPTION = `The ${TEMPLATE_NAME} consumer service`;
/** Build output and caches that never belong to a new service. */
const TEMPLATE_SKIP = /^(dist|node_modules|coverage)$|\.tsbuildinfo$/;

/** Paths of the template's files, relative to the template folder, sorted. */
function templateFiles(dir = TEMPLATE_DIR, rel = '') {
  const out = [];
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    if (TEMPLATE_SKIP.test(entry.name)) continue;
    const child = path.posix.join(rel, entry.name);
    if (entry.isDirectory()) out.push(...templateFiles(dir, child));
    else if (entry.isFile()) out.push(child);
  }
  return out.sort();
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A template file's text for service `name`: in one pass (so nothing substituted is substituted
 * again) the description, quoted as it stands ('…' as a TypeScript string, "…" as JSON, bare as
 * text), then the name as written (template-service), in camelCase (templateService) and in
 * PascalCase (TemplateService).
 */
function substitute(text, name, description) {
  const tsString = `'${description.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const replacements = new Map([
    [`'${TEMPLATE_DESCRIPTION}'`, tsString],
    [`"${TEMPLATE_DESCRIPTION}"`, JSON.stringify(description)],
    [TEMPLATE_DESCRIPTION, description],
    [TEMPLATE_NAME, name],
    [camel(TEMPLATE_NAME), camel(name)],
    [title(camel(TEMPLATE_NAME)), title(camel(name))],
  ]);
  const pattern = new RegExp([...replacements.keys()].map(escapeRegExp).join('|'), 'g');
  return text.replace(pattern, (token) => replacements.get(token));
}

/** `a.*, b.c` -> ['a.*', 'b.c']; throws UsageError on a pattern the protocol refuses. */
function parseEvents(text) {
  const patterns = [
    ...new Set(
      String(text)
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
    ),
  ];
  if (patterns.length === 0) throw new UsageError('--events: give at least one topic pattern');
  if (patterns.length > MAX_EVENT_PATTERNS)
    throw new UsageError(`--events: at most ${MAX_EVENT_PATTERNS} patterns`);
  for (const p of patterns) {
    const problem = topicPatternProblem(p);
    if (problem) throw new UsageError(`--events: ${problem}`);
  }
  return patterns;
}

/** The template's definition with its event subscriptions, after the schema line. */
function withEvents(serviceTs, patterns) {
  const anchor = /^(\s*)schema: [^\n]*\n/m;
  const m = anchor.exec(serviceTs);
  if (!m) throw new Error('the template service.ts has no `schema:` line to put `events` after');
  const indent = m[1];
  const block =
    `${indent}// Events: topic patterns on warren.events bound to this service's queue (ctx.event is the\n` +
    `${indent}// topic). They are checked by the schema above unless a pattern has its own: { 'a.b': schema }.\n` +
    `${indent}events: [${patterns.map((p) => `'${p}'`).join(', ')}],\n`;
  return serviceTs.slice(0, m.index + m[0].length) + block + serviceTs.slice(m.index + m[0].length);
}

/** The files of a new service, by path relative to services/<name>/: the template, substituted. */
function serviceFiles(name, description, zodRange, templateDir = TEMPLATE_DIR, events = []) {
  const files = {};
  for (const rel of templateFiles(templateDir)) {
    let text = substitute(fs.readFileSync(path.join(templateDir, rel), 'utf8'), name, description);
    if (rel === 'src/service.ts' && events.length > 0) text = withEvents(text, events);
    if (rel === 'package.json' && zodRange) {
      // zod as the service-kit has it, so the service's schemas and the kit's are one zod.
      const pkg = JSON.parse(text);
      if (pkg.dependencies?.zod) pkg.dependencies.zod = zodRange;
      text = JSON.stringify(pkg, null, 2) + '\n';
    }
    files[rel] = text;
  }
  return files;
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

/** How the YAML files are written back: as they were read (a round trip changes no byte). */
const YAML_OUT = { lineWidth: 0, flowCollectionPadding: false };

/** Parses one YAML document keeping comments and layout; throws on a syntax error. */
function parseYamlDocument(text, file) {
  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
  return doc;
}

/** Replaces `from` (a whole word) with `to` in every string scalar and comment under `node`. */
function renameIn(node, from, to) {
  const word = new RegExp(`\\b${escapeRegExp(from)}\\b`, 'g');
  const swap = (s) => (typeof s === 'string' ? s.replace(word, to) : s);
  const comments = (n) => {
    if (n.comment) n.comment = swap(n.comment);
    if (n.commentBefore) n.commentBefore = swap(n.commentBefore);
  };
  // Keys are nodes too: visit() walks them like values.
  YAML.visit(node, {
    Node: (_key, n) => {
      if (YAML.isScalar(n) && typeof n.value === 'string') n.value = swap(n.value);
      comments(n);
    },
  });
  if (YAML.isDocument(node)) comments(node);
}

/** A quoted scalar (so '9400' stays a string), in the quote style of `like` when it has one. */
function quotedScalar(value, like) {
  const scalar = new YAML.Scalar(value);
  const quoted = [YAML.Scalar.QUOTE_SINGLE, YAML.Scalar.QUOTE_DOUBLE];
  scalar.type = YAML.isScalar(like) && quoted.includes(like.type) ? like.type : quoted[0];
  if (YAML.isScalar(like) && like.comment) scalar.comment = like.comment;
  return scalar;
}

/** Sets `wanted` in a compose service's environment node (map form, or KEY=value list form). */
function setEnvironment(doc, service, wanted) {
  let env = service.get('environment', true);
  if (!env) {
    env = doc.createNode({});
    service.set('environment', env);
  }
  if (YAML.isMap(env)) {
    for (const [k, v] of Object.entries(wanted)) env.set(k, quotedScalar(v, env.get(k, true)));
  } else if (YAML.isSeq(env)) {
    for (const [k, v] of Object.entries(wanted)) {
      const at = env.items.findIndex(
        (item) => YAML.isScalar(item) && String(item.value).split('=')[0] === k,
      );
      if (at >= 0) env.items[at].value = `${k}=${v}`;
      else env.add(doc.createNode(`${k}=${v}`));
    }
  } else {
    throw new Error('echo has an environment that is neither a map nor a list');
  }
}

/**
 * docker-compose.yml text with a `<name>` service modeled on the `echo` service: its node cloned
 * (settings, comments, anchors and aliases kept) with echo renamed, METRICS_PORT 9400,
 * ADVERTISE_HOST <name>, AMQP_URL as echo's with echo's user swapped for the new one, and no host
 * `ports:` (Prometheus scrapes inside the compose network), added after the last service. Edited
 * through the yaml package's Document API: the rest of the file is written back as it was read.
 * Returns the whole text and the new service's YAML alone.
 */
function addComposeService(text, name) {
  const doc = parseYamlDocument(text, 'docker-compose.yml');
  // merge: `<<: *anchor` is a merge key (x-service blocks), as Compose reads it.
  const before = YAML.parse(text, { merge: true });
  const services = doc.get('services', true);
  if (!YAML.isMap(services)) throw new Error('docker-compose.yml has no services: mapping');
  if (services.has(name)) throw new Error(`docker-compose.yml already has a service "${name}"`);
  const echo = services.get('echo', true);
  if (!YAML.isMap(echo))
    throw new Error('docker-compose.yml has no echo service to model the new one on');

  const service = echo.clone();
  renameIn(service, 'echo', name);
  // Host port publishing: each copy would claim the same host port.
  service.delete('ports');
  const echoUrl = envOf(before.services.echo).AMQP_URL;
  const wanted = {
    METRICS_PORT: '9400',
    ADVERTISE_HOST: name,
    // echo's URL with echo's user swapped for the new service's own (see addRabbitUser).
    AMQP_URL: echoUrl
      ? String(echoUrl).replace(/\becho\b/g, name)
      : 'amqp://guest:guest@rabbitmq:5672',
  };
  setEnvironment(doc, service, wanted);
  const key = doc.createNode(name);
  // A blank line before the new service, as between the others (when there are any).
  key.spaceBefore = services.items.some((pair) => YAML.isNode(pair.key) && pair.key.spaceBefore);
  services.add(doc.createPair(key, service));
  const out = doc.toString(YAML_OUT);

  // The result must parse, keep every other service as it was, and carry the wanted settings.
  const after = YAML.parse(out, { merge: true });
  const { [name]: added, ...others } = after.services ?? {};
  if (!added || JSON.stringify(others) !== JSON.stringify(before.services)) {
    throw new Error('could not add the service cleanly');
  }
  const env = envOf(added);
  for (const [k, v] of Object.entries(wanted)) {
    if (String(env[k]) !== v) throw new Error(`added service lacks ${k}=${v}`);
  }
  return { text: out, block: inserted(text, out) };
}

/** What `after` has between the longest prefix and suffix it shares with `before`. */
function inserted(before, after) {
  let start = 0;
  while (start < before.length && before[start] === after[start]) start++;
  let end = 0;
  while (
    end < before.length - start &&
    before[before.length - 1 - end] === after[after.length - 1 - end]
  )
    end++;
  return after.slice(start, after.length - end);
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
 * Kubernetes: infra/k8s/<name>.yaml modeled on echo.yaml (Deployment, PDB, ScaledObject, ...: each
 * document with echo renamed, comments kept, the header's first line describing the new service),
 * and the kustomization's resources and images entries. Edited through the yaml package's Document
 * API. Returns path -> new text.
 */
function addK8sService(root, name, description) {
  const dir = path.join(root, 'infra/k8s');
  const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(dir, 'echo.yaml'), 'utf8'));
  if (!Array.isArray(docs) || docs.length === 0) throw new Error('echo.yaml has no documents');
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`echo.yaml: ${doc.errors[0].message}`);
    renameIn(doc, 'echo', name);
  }
  // The file's opening comment: the document's own, or (no blank line after it) its first key's.
  const first = docs[0];
  const firstKey = YAML.isMap(first.contents) ? first.contents.items[0]?.key : undefined;
  const holder = first.commentBefore || !YAML.isNode(firstKey) ? first : firstKey;
  const header = (holder.commentBefore ?? '').split('\n');
  header[0] = ` ${name}: ${description}`;
  holder.commentBefore = header.join('\n');
  const manifest = docs.map((doc) => doc.toString(YAML_OUT)).join('');

  const kustomizationPath = path.join(dir, 'kustomization.yaml');
  const k = parseYamlDocument(fs.readFileSync(kustomizationPath, 'utf8'), 'kustomization.yaml');
  const resources = k.get('resources', true);
  if (!YAML.isSeq(resources)) throw new Error('kustomization.yaml has no resources list');
  const file = `${name}.yaml`;
  if (!resources.items.some((item) => YAML.isScalar(item) && item.value === file)) {
    // After the last manifest file (directories such as a component may follow).
    const last = resources.items.findLastIndex(
      (item) => YAML.isScalar(item) && /\.yaml$/.test(String(item.value)),
    );
    resources.items.splice(last + 1, 0, k.createNode(file));
  }
  let images = k.get('images', true);
  if (images === undefined) {
    images = k.createNode([]);
    k.set('images', images);
  }
  if (!YAML.isSeq(images)) throw new Error('kustomization.yaml: images is not a list');
  const image = `warren-${name}`;
  if (!images.items.some((item) => YAML.isMap(item) && item.get('name') === image))
    images.add(k.createNode({ name: image, newTag: 'dev' }));
  return new Map([
    [path.join(dir, file), manifest],
    [kustomizationPath, k.toString(YAML_OUT)],
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
  const events = options.events === undefined ? [] : parseEvents(options.events);
  const description = (options.description ?? `The ${name} consumer service`)
    .replace(/\s+/g, ' ')
    .trim();
  const dir = path.join(root, 'services', name);
  const warnings = [];
  /** path -> new content; formatted, then written together. */
  const writes = new Map();
  for (const [rel, content] of Object.entries(
    serviceFiles(name, description, zodRange(root), TEMPLATE_DIR, events),
  )) {
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
        events: { type: 'string' },
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
      events: values.events,
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
  TEMPLATE_DIR,
  templateFiles,
  validateName,
  serviceFiles,
  parseEvents,
  addTsconfigReference,
  addComposeService,
  addK8sService,
  addRabbitUser,
  generate,
  UsageError,
};

if (require.main === module) void main();
