// Writes src/openapi.d.ts, the REST API's types, from docs/reference/openapi.yaml with
// openapi-typescript (pinned in package-lock.json). `npm run gen:api` after changing the
// document; `node gen-api.mjs --stdout` prints what it would write (the tests compare).
// The header records the document's sha256, so a stale file is seen without Node too.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import openapiTS, { astToString } from 'openapi-typescript';

const SPEC = new URL('../../docs/reference/openapi.yaml', import.meta.url);
const OUT = new URL('./src/openapi.d.ts', import.meta.url);
const GENERATOR = JSON.parse(
  readFileSync(new URL('./node_modules/openapi-typescript/package.json', import.meta.url))
);

const spec = readFileSync(SPEC, 'utf8');
const sha256 = createHash('sha256').update(spec, 'utf8').digest('hex');
// a schema of `type: object` without properties (job parameters) holds any JSON values
const ast = await openapiTS(spec, { silent: true, emptyObjectsUnknown: true });
const text = `/**
 * The gpuhub REST API's types: generated, do not edit.
 *
 * From docs/reference/openapi.yaml (sha256 ${sha256})
 * by openapi-typescript ${GENERATOR.version}; run \`npm run gen:api\` in extensions/api-types.
 */

${astToString(ast)}`;

if (process.argv.includes('--stdout')) {
  process.stdout.write(text);
} else {
  writeFileSync(OUT, text);
}
