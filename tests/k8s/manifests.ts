// Loads Warren's Kubernetes manifests and validates each against its schema, offline:
// core and autoscaling kinds with kubernetes-models, KEDA with @kubernetes-models/keda, PodMonitor with
// @kubernetes-models/prometheus-operator, RabbitmqCluster and Kustomization with schemas in ./schemas.
import fs from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(__dirname, '../..');
export const K8S_DIR = path.join(ROOT, 'infra/k8s');

export interface Manifest {
  /** Path relative to the repo root. */
  file: string;
  /** Position in a multi-document file (0-based). */
  index: number;
  doc: K8sObject;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/** Every YAML document under infra/k8s (recursively), in file order. */
export function loadManifests(dir = K8S_DIR): Manifest[] {
  const out: Manifest[] = [];
  const walk = (d: string) => {
    for (const entry of fs
      .readdirSync(d, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.ya?ml$/.test(entry.name)) {
        const docs = parseAllDocuments(fs.readFileSync(full, 'utf8'));
        docs.forEach((doc, index) => {
          if (doc.errors.length > 0)
            throw new Error(`${full}: ${doc.errors.map((e) => e.message).join('; ')}`);
          const value = doc.toJS() as K8sObject | null;
          if (value) out.push({ file: path.relative(ROOT, full), index, doc: value });
        });
      }
    }
  };
  walk(dir);
  return out;
}

/** The npm package that ships the generated model (with its validator) of an API group. */
function modelPackage(apiVersion: string): string | undefined {
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  if (group === 'keda.sh') return '@kubernetes-models/keda';
  if (group === 'monitoring.coreos.com') return '@kubernetes-models/prometheus-operator';
  if (group === 'rabbitmq.com' || group === 'kustomize.config.k8s.io') return undefined;
  return 'kubernetes-models';
}

const ajv = new Ajv({ allErrors: true, strict: true });
const ownSchemas: Record<string, ValidateFunction> = {
  'rabbitmq.com/v1beta1/RabbitmqCluster': ajv.compile(
    JSON.parse(
      fs.readFileSync(path.join(__dirname, 'schemas/rabbitmqcluster.schema.json'), 'utf8'),
    ),
  ),
  'kustomize.config.k8s.io/v1beta1/Kustomization': ajv.compile(
    JSON.parse(fs.readFileSync(path.join(__dirname, 'schemas/kustomization.schema.json'), 'utf8')),
  ),
};

interface Model {
  validate(): void;
}
type ModelClass = new (data: unknown) => Model;

/** Schema errors of one document (empty when valid); an unknown apiVersion/kind is an error too. */
export function schemaErrors(doc: K8sObject): string[] {
  const { apiVersion, kind } = doc;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string')
    return ['apiVersion and kind must be strings'];
  const own = ownSchemas[`${apiVersion}/${kind}`];
  if (own) {
    return own(doc)
      ? []
      : (own.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`.trim());
  }
  const pkg = modelPackage(apiVersion);
  if (!pkg) return [`no schema for ${apiVersion} ${kind}`];
  let Cls: ModelClass | undefined;
  try {
    // e.g. kubernetes-models/apps/v1/Deployment, @kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(`${pkg}/${apiVersion}/${kind}`) as Record<string, ModelClass>;
    Cls = mod[kind];
  } catch {
    Cls = undefined;
  }
  if (!Cls) return [`no model for ${apiVersion} ${kind} in ${pkg}`];
  try {
    new Cls(doc).validate();
    return [];
  } catch (err) {
    return [err instanceof Error ? err.message : String(err)];
  }
}

/** The documents of one kind. */
export const ofKind = (all: Manifest[], kind: string): Manifest[] =>
  all.filter((m) => m.doc.kind === kind);

/** Consumer services: folders of services/ with a package.json, except the gateway. */
export function consumerServices(): string[] {
  const dir = path.join(ROOT, 'services');
  return (
    fs
      .readdirSync(dir)
      // The gateway and the console are not queue consumers (the console is a local tool, not deployed).
      .filter(
        (n) =>
          n !== 'gateway' && n !== 'console' && fs.existsSync(path.join(dir, n, 'package.json')),
      )
      .sort()
  );
}
