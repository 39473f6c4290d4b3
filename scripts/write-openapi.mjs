#!/usr/bin/env node
// Writes openapi/openapi.json: the OpenAPI document exactly as the app serves it at GET /openapi.json, pretty
// printed (2 spaces, the served key order, a final newline). Runs the compiled app (npm run build first: the
// `openapi` npm script does both). Building the app does not contact the FHIR server, so any base URL will do.
//
//   node scripts/write-openapi.mjs           write openapi/openapi.json
//   node scripts/write-openapi.mjs --check   exit 1 when the committed file differs from the served document
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'openapi', 'openapi.json');
const check = process.argv.includes('--check');

const appModule = join(root, 'dist', 'src', 'http', 'app.js');
if (!existsSync(appModule)) {
  process.stderr.write(
    'write-openapi: dist/src/http/app.js is missing: run `npm run build` first (or `npm run openapi`).\n',
  );
  process.exit(2);
}
const { buildApp } = await import(pathToFileURL(appModule).href);
const { loadConfig } = await import(pathToFileURL(join(root, 'dist', 'src', 'config.js')).href);
const JWT_ENV = {
  AUTH_MODE: 'jwt',
  AUTH_JWKS_URL: 'https://issuer.example/.well-known/jwks.json',
  AUTH_ISSUER: 'https://issuer.example',
  AUTH_AUDIENCE: 'https://care-plans.example',
};

const app = await buildApp(
  // The document of a production deployment: AUTH_MODE=jwt (nothing is fetched from these URLs to build it).
  { ...loadConfig(JWT_ENV), fhirBaseUrl: 'http://127.0.0.1:9/fhir', logLevel: 'silent' },
  { logger: false },
);
let text;
try {
  await app.ready();
  const response = await app.inject({ method: 'GET', url: '/openapi.json' });
  if (response.statusCode !== 200) throw new Error(`GET /openapi.json answered ${response.statusCode}`);
  text = `${JSON.stringify(response.json(), null, 2)}\n`;
} finally {
  await app.close();
}

if (check) {
  const committed = existsSync(target) ? readFileSync(target, 'utf8') : '';
  if (committed !== text) {
    process.stderr.write('openapi/openapi.json is out of date: run `npm run openapi` and commit it.\n');
    process.exit(1);
  }
  process.stdout.write('openapi/openapi.json matches the served document.\n');
} else {
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, text);
  process.stdout.write(
    `wrote ${target.slice(root.length + 1)} (${Object.keys(JSON.parse(text).paths).length} paths)\n`,
  );
}
