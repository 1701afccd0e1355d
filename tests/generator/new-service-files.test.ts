// new-service without a build: name validation, the template's substitution, refusal to overwrite,
// tsconfig edits, and the YAML edits (docker-compose.yml, infra/k8s) that keep every comment.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { RESERVED_NAMES } from '@warren/protocol';

interface Generator {
  validateName(name: string, root?: string): void;
  TEMPLATE_DIR: string;
  templateFiles(dir?: string): string[];
  serviceFiles(
    name: string,
    description: string,
    zodRange?: string,
    templateDir?: string,
    events?: string[],
  ): Record<string, string>;
  parseEvents(text: string): string[];
  addTsconfigReference(text: string, name: string): string;
  addComposeService(text: string, name: string): { text: string; block: string };
  addRabbitUser(text: string, name: string): string;
  addK8sService(root: string, name: string, description: string): Map<string, string>;
  generate(
    name: string,
    options: { root: string; install: boolean; log: (line: string) => void; description?: string },
  ): Promise<{ dir: string; files: string[]; warnings: string[] }>;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const gen = require('../../tools/new-service/new-service.js') as Generator;
const ROOT = path.resolve(__dirname, '../..');

const COMPOSE_MAP = `# Warren stack
x-service: &service
  build:
    context: .
    dockerfile: infra/docker/Dockerfile
  restart: unless-stopped
  depends_on:
    rabbitmq:
      condition: service_healthy

services:
  rabbitmq:
    image: rabbitmq:3.13-management
    ports:
      - "5672:5672"

  gateway:
    <<: *service
    command: ["node", "services/gateway/dist/main.js"]
    ports:
      - "3000:3000"

  echo:
    <<: *service
    command: ["node", "services/echo/dist/main.js"] # the echo service
    environment:
      AMQP_URL: amqp://echo:echo-dev-only-change-me@rabbitmq:5672/warren
      METRICS_PORT: "9400"
      ADVERTISE_HOST: echo
      LOG_LEVEL: info
    ports:
      - "9402:9400"

  hello:
    <<: *service
    command: ["node", "services/hello/dist/main.js"]

volumes:
  grafana-data: {}
`;

const COMPOSE_LIST = `services:
  echo:
    image: warren/echo:latest
    environment:
    - AMQP_URL=amqp://guest:guest@rabbitmq:5672
    - METRICS_PORT=9401
    ports:
    - 9401:9401
`;

describe('new-service: names', () => {
  it.each([
    ['', /required/],
    ['Payments', /invalid service name/],
    ['9lives', /invalid service name/],
    ['has_underscore', /invalid service name/],
    ['a'.repeat(64), /invalid service name/],
    ['amq.gen', /belong to RabbitMQ/],
    ['orders.dlq', /created for each service/],
    ['gateway', /reserved/],
    ['service-kit', /reserved/],
    ['rabbitmq', /reserved/],
    ['template-service', /reserved/],
    ['bench', /reserved/],
    ['reports', /reserved/],
    ['echo', /services\/echo already exists; refusing to overwrite/],
    ['hello', /already exists/],
    ['wordcount', /already exists/],
  ])('refuses %j', (name, why) => {
    expect(() => gen.validateName(name, ROOT)).toThrow(why);
  });

  it.each([...RESERVED_NAMES])(
    'refuses %j, reserved by the protocol (the list the gateway answers 404 for)',
    (name) => {
      expect(() => gen.validateName(name, ROOT)).toThrow(/reserved/);
    },
  );

  it.each(['payments', 'a', 'image-resize2', 'a'.repeat(63)])('accepts %j', (name) => {
    expect(() => gen.validateName(name, ROOT)).not.toThrow();
  });
});

describe('new-service: the template', () => {
  const FILES = [
    'README.md',
    'package.json',
    'src/main.ts',
    'src/service.test.ts',
    'src/service.ts',
    'tsconfig.json',
  ];

  it('is the service template-service in tools/new-service/template', () => {
    expect(gen.TEMPLATE_DIR).toBe(path.join(ROOT, 'tools/new-service/template'));
    expect(gen.templateFiles()).toEqual(FILES);
  });

  it('is renamed everywhere: name, camelCase, PascalCase, description', () => {
    const files = gen.serviceFiles('image-resize', "Resizes 'images' \\ fast", '^4.1.0');
    expect(Object.keys(files).sort()).toEqual(FILES);
    for (const [file, text] of Object.entries(files))
      expect([file, text]).not.toEqual([file, expect.stringMatching(/template.?service/i)]);
    const service = files['src/service.ts'] ?? '';
    expect(service).toContain("name: 'image-resize'");
    expect(service).toContain('export const imageResizeInput = z.object(');
    expect(service).toContain('export type ImageResizeInput = ');
    expect(service).toContain("description: 'Resizes \\'images\\' \\\\ fast',");
    expect(service.split('\n')[0]).toBe("// image-resize: Resizes 'images' \\ fast");
    expect(JSON.parse(files['package.json'] ?? '')).toMatchObject({
      name: '@warren/image-resize',
      description: "Resizes 'images' \\ fast",
      dependencies: { zod: '^4.1.0' },
    });
    expect(files['README.md']).toContain("# image-resize\n\nResizes 'images' \\ fast\n");
    expect(files['src/service.test.ts']).toContain("describe('image-resize service'");
  });

  it('substitutes once: a description naming the template stays as given', () => {
    const files = gen.serviceFiles('orders', 'Unlike template-service, it keeps orders');
    expect(JSON.parse(files['package.json'] ?? '').description).toBe(
      'Unlike template-service, it keeps orders',
    );
  });
});

describe('new-service: tsconfig.json', () => {
  it('appends one reference, once', () => {
    const text = JSON.stringify({ files: [], references: [{ path: 'libs/messaging' }] }, null, 2);
    const once = gen.addTsconfigReference(text, 'payments');
    expect(JSON.parse(once)).toEqual({
      files: [],
      references: [{ path: 'libs/messaging' }, { path: 'services/payments' }],
    });
    expect(gen.addTsconfigReference(once, 'payments')).toBe(once);
  });
});

describe('new-service: docker-compose.yml', () => {
  it('adds a block modeled on echo, without host ports, leaving the rest untouched', () => {
    const { text, block } = gen.addComposeService(COMPOSE_MAP, 'payments');
    // echo's node cloned: its merge key, comment and quoting kept, echo renamed.
    expect(block.trim()).toBe(
      [
        'payments:',
        '    <<: *service',
        '    command: ["node", "services/payments/dist/main.js"] # the payments service',
        '    environment:',
        "      AMQP_URL: 'amqp://payments:payments-dev-only-change-me@rabbitmq:5672/warren'",
        '      METRICS_PORT: "9400"',
        "      ADVERTISE_HOST: 'payments'",
        '      LOG_LEVEL: info',
      ].join('\n'),
    );
    // Pure insertion: removing the block gives back the original file, comments and all.
    expect(text.replace(block, '')).toBe(COMPOSE_MAP);
    const doc = YAML.parse(text, { merge: true }) as {
      services: Record<string, { command: string[]; environment: Record<string, string> }>;
      volumes: unknown;
    };
    expect(Object.keys(doc.services)).toEqual(['rabbitmq', 'gateway', 'echo', 'hello', 'payments']);
    expect(doc.services.payments).toMatchObject({
      command: ['node', 'services/payments/dist/main.js'],
      restart: 'unless-stopped',
      environment: { METRICS_PORT: '9400', ADVERTISE_HOST: 'payments' },
    });
    expect(doc.services.payments).not.toHaveProperty('ports');
    expect(doc.volumes).toEqual({ 'grafana-data': {} });
  });

  it('handles the KEY=value list form and adds missing variables', () => {
    const { text } = gen.addComposeService(COMPOSE_LIST, 'img-resize');
    const doc = YAML.parse(text) as { services: Record<string, Record<string, unknown>> };
    expect(doc.services['img-resize']).toEqual({
      image: 'warren/img-resize:latest',
      environment: [
        'AMQP_URL=amqp://guest:guest@rabbitmq:5672',
        'METRICS_PORT=9400',
        'ADVERTISE_HOST=img-resize',
      ],
    });
    expect(doc.services.echo).toEqual(YAML.parse(COMPOSE_LIST).services.echo);
  });

  it("adds to the repository's docker-compose.yml without changing a byte of the rest", () => {
    const original = fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    const { text, block } = gen.addComposeService(original, 'payments');
    expect(text.replace(block, '')).toBe(original);
    expect(block).toContain('  payments:\n');
    expect(block).not.toMatch(/\becho\b/);
  });

  it('refuses a name the file already has', () => {
    expect(() => gen.addComposeService(COMPOSE_MAP, 'hello')).toThrow(
      /already has a service "hello"/,
    );
  });
});

describe('new-service: generate', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'newsvc-'));
    fs.mkdirSync(path.join(root, 'services/echo'), { recursive: true });
    fs.mkdirSync(path.join(root, 'libs/service-kit'), { recursive: true });
    fs.copyFileSync(
      path.join(ROOT, 'libs/service-kit/package.json'),
      path.join(root, 'libs/service-kit/package.json'),
    );
    fs.writeFileSync(path.join(root, 'tsconfig.json'), '{ "files": [], "references": [] }\n');
    fs.copyFileSync(path.join(ROOT, '.prettierrc.json'), path.join(root, '.prettierrc.json'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('writes the service, the reference and the compose block; warns when compose is absent', async () => {
    const lines: string[] = [];
    const result = await gen.generate('payments', {
      root,
      install: false,
      log: (l) => lines.push(l),
    });
    expect(result.files.sort()).toEqual(
      [
        'README.md',
        'package.json',
        'src/main.ts',
        'src/service.test.ts',
        'src/service.ts',
        'tsconfig.json',
      ].sort(),
    );
    expect(result.warnings).toEqual([
      'docker-compose.yml not found: no compose service added',
      'npm install skipped: run it before committing (CI runs npm ci)',
    ]);
    const pkg = JSON.parse(
      fs.readFileSync(path.join(root, 'services/payments/package.json'), 'utf8'),
    );
    expect(pkg).toMatchObject({ name: '@warren/payments', main: 'dist/main.js' });
    expect(pkg.dependencies.zod).toMatch(/^\^4\./);
    expect(fs.readFileSync(path.join(root, 'services/payments/src/service.ts'), 'utf8')).toContain(
      "name: 'payments'",
    );
    expect(
      JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.json'), 'utf8')).references,
    ).toEqual([{ path: 'services/payments' }]);
    // A second run refuses and changes nothing.
    const before = fs.readFileSync(path.join(root, 'services/payments/src/service.ts'), 'utf8');
    await expect(
      gen.generate('payments', { root, install: false, log: () => undefined }),
    ).rejects.toThrow(/already exists; refusing to overwrite/);
    expect(fs.readFileSync(path.join(root, 'services/payments/src/service.ts'), 'utf8')).toBe(
      before,
    );
  });

  it('edits docker-compose.yml and the RabbitMQ definitions when they exist', async () => {
    fs.writeFileSync(path.join(root, 'docker-compose.yml'), COMPOSE_MAP);
    fs.mkdirSync(path.join(root, 'infra/rabbitmq'), { recursive: true });
    fs.copyFileSync(
      path.join(ROOT, 'infra/rabbitmq/definitions.json'),
      path.join(root, 'infra/rabbitmq/definitions.json'),
    );
    const result = await gen.generate('orders', { root, install: false, log: () => undefined });
    expect(result.warnings).toEqual([
      'npm install skipped: run it before committing (CI runs npm ci)',
    ]);
    const doc = YAML.parse(fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), {
      merge: true,
    }) as { services: Record<string, { environment: Record<string, string> }> };
    expect(doc.services.orders?.environment).toMatchObject({
      ADVERTISE_HOST: 'orders',
      METRICS_PORT: '9400',
    });
  });
});

test('Kubernetes: a manifest modeled on echo.yaml and the kustomization entries', () => {
  const out = gen.addK8sService(ROOT, 'invoice', 'Bills things');
  const manifest = out.get(path.join(ROOT, 'infra/k8s/invoice.yaml')) ?? '';
  expect(manifest.split('\n')[0]).toBe('# invoice: Bills things');
  expect(manifest).not.toMatch(/\becho\b/);
  const docs = YAML.parseAllDocuments(manifest).map(
    (d) => d.toJS() as { kind: string; metadata: { name: string } },
  );
  expect(docs.map((d) => d.kind)).toEqual(
    expect.arrayContaining(['Deployment', 'PodDisruptionBudget', 'ScaledObject']),
  );
  for (const d of docs) expect(d.metadata.name).toBe('invoice');
  // echo.yaml renamed, comments included; only the header's first line is the new service's own.
  const echo = fs.readFileSync(path.join(ROOT, 'infra/k8s/echo.yaml'), 'utf8');
  expect(manifest.split('\n').slice(1)).toEqual(
    echo
      .replace(/\becho\b/g, 'invoice')
      .split('\n')
      .slice(1),
  );
  const k = YAML.parse(out.get(path.join(ROOT, 'infra/k8s/kustomization.yaml')) ?? '') as {
    resources: string[];
    images: { name: string }[];
  };
  expect(k.resources).toContain('invoice.yaml');
  expect(k.images.map((i) => i.name)).toContain('warren-invoice');
  // Two entries added, nothing else changed (comments included).
  const original = fs.readFileSync(path.join(ROOT, 'infra/k8s/kustomization.yaml'), 'utf8');
  const text = out.get(path.join(ROOT, 'infra/k8s/kustomization.yaml')) ?? '';
  expect(
    text
      .replace('  - invoice.yaml\n', '')
      .replace('  - name: warren-invoice\n    newTag: dev\n', ''),
  ).toBe(original);
});

describe('--events', () => {
  it('parses comma-separated topic patterns, dropping blanks and repeats', () => {
    expect(gen.parseEvents('order.*, audit.#,order.*,, b.c')).toEqual([
      'order.*',
      'audit.#',
      'b.c',
    ]);
  });

  it.each([[''], [' , '], ['Order.*'], ['order..x'], ['order.*x'], ['a b']])(
    'refuses %p with a usage error naming the rule',
    (text) => {
      expect(() => gen.parseEvents(text)).toThrow(/--events: /);
    },
  );

  it("puts the patterns into the service's definition, after its schema", () => {
    const files = gen.serviceFiles('orders', 'Orders', undefined, gen.TEMPLATE_DIR, [
      'order.*',
      'audit.#',
    ]);
    const ts = files['src/service.ts'] ?? '';
    expect(ts).toMatch(
      / {2}schema: ordersInput,\n(\s*\/\/[^\n]*\n)+ {2}events: \['order\.\*', 'audit\.#'\],\n/,
    );
    // Without --events the definition has none.
    expect(gen.serviceFiles('orders', 'Orders')['src/service.ts']).not.toContain('events:');
  });
});
