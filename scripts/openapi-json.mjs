#!/usr/bin/env node
// Writes docs/openapi.json from docs/openapi.yaml (the description is
// edited as YAML; the gateway embeds the JSON at build time and serves it
// at GET /v1/openapi.json). `make openapi` runs it; the integration test
// tests/integration/openapi.test.mjs fails when the two differ.
//   node scripts/openapi-json.mjs          write docs/openapi.json
//   node scripts/openapi-json.mjs --check  exit 1 when it is not up to date
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(repo, 'docs', 'openapi.yaml');
const dst = path.join(repo, 'docs', 'openapi.json');

export function openapiJson() {
  return JSON.stringify(YAML.parse(readFileSync(src, 'utf8')), null, 1) + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = openapiJson();
  if (process.argv.includes('--check')) {
    let old = '';
    try { old = readFileSync(dst, 'utf8'); } catch { /* missing */ }
    if (old !== text) {
      console.error('docs/openapi.json is not docs/openapi.yaml as JSON: run `make openapi`');
      process.exit(1);
    }
  } else {
    writeFileSync(dst, text);
  }
}
