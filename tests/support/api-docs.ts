// Validators of the gateway's API descriptions against the official OpenAPI 3.1 and AsyncAPI 3 schemas.
import { execFile } from 'node:child_process';
import path from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import asyncapi3 from '@asyncapi/specs/schemas/3.0.0-without-$id.json';

/**
 * The official OpenAPI 3.1 JSON Schema, through @seriousme/openapi-schema-validator (ajv alone
 * mishandles the schema's $dynamicRef). It is an ES module, which jest cannot load: node runs it.
 */
export function validateOpenApi(doc: unknown): Promise<boolean> {
  const script =
    "import { Validator } from '@seriousme/openapi-schema-validator';" +
    "let s = ''; process.stdin.on('data', (d) => (s += d)).on('end', async () => {" +
    'const r = await new Validator().validate(JSON.parse(s));' +
    'process.stdout.write(JSON.stringify(r)); });';
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { cwd: path.resolve(__dirname, '../..') },
      (err, stdout) =>
        err ? reject(err) : resolve((JSON.parse(stdout) as { valid: boolean }).valid),
    );
    child.stdin?.end(JSON.stringify(doc));
  });
}
/** The official AsyncAPI 3.0.0 JSON Schema (draft-07), with ajv. */
export const validateAsyncApi = addFormats(new Ajv({ strict: false, allErrors: true })).compile(
  asyncapi3,
);
