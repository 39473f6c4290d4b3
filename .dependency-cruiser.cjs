// The floors of src/ and what each may import (README, "Architecture"). `npm run lint:imports` checks them;
// test/architecture.test.ts proves that each rule fails on a planted violation.
//
// Floors, from the ground up:
//   ground    src/model/ (imports nothing else of src/), src/fhir/fhir-id.ts (nothing), and the process's own
//             src/config.ts, src/paths.ts, src/logging.ts (only each other)
//   auth      src/auth/: who is calling; the FHIR id rule only
//   mapping   src/fhir/mapping/, src/fhir/validation/: pure; the model, the FHIR id rule and each other
//   client    src/fhir/client/: all talk with a FHIR server; knows no model
//   use cases src/care-plans/ and every other folder of src/ not named here (subscriptions/, measures/, ...):
//             anything below; never HTTP, the embedded FHIR server or the process entry
//   http      src/http/: anything below; never the embedded FHIR server
//   entry     src/server.ts: the only file that may start the embedded FHIR server
//   wing      src/embedded-fhir/: a FHIR server of its own; imports nothing of the service side (its standalone
//             entry, main.ts, may use the process's logging policy)

const USE_CASE = '^src/(?!(?:model|fhir|http|embedded-fhir|auth)/)[^/]+/';
const IO_MODULES = '^(?:node:)?(?:fs|fs/promises|net|http|https|http2|dgram|dns|tls|child_process|cluster|worker_threads)$';
// Packages are matched by where they resolve (node_modules/<name>/...).
const IO_PACKAGES = '^node_modules/(?:fastify|fastify-plugin|@fastify/[^/]+|undici|fhir-kit-client|cockatiel|pino|jose)/';
const HTTP_PACKAGES = '^node_modules/(?:fastify|fastify-plugin|@fastify/[^/]+)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'Files that import each other in a loop have no floor: every floor imports only the floors below.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'model-imports-only-model',
      comment: 'The model is the ground floor: plan types, rules, pure edits, domain errors; no HTTP, no I/O.',
      severity: 'error',
      from: { path: '^src/model/' },
      to: { pathNot: '^src/model/' },
    },
    {
      name: 'fhir-id-imports-nothing',
      severity: 'error',
      from: { path: '^src/fhir/fhir-id\\.ts$' },
      to: { path: '^src/' },
    },
    {
      name: 'process-ground-stays-ground',
      comment: 'Configuration, paths and the logging policy are below everything that uses them.',
      severity: 'error',
      from: { path: '^src/(?:config|paths|logging)\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(?:config|paths|logging)\\.ts$' },
    },
    {
      name: 'auth-imports-only-fhir-id',
      severity: 'error',
      from: { path: '^src/auth/' },
      to: { path: '^src/', pathNot: '^src/(?:auth/|fhir/fhir-id\\.ts$)' },
    },
    {
      name: 'mapping-imports-only-model',
      comment: 'The mapping and the validation are pure: the model, the FHIR id rule and each other.',
      severity: 'error',
      from: { path: '^src/fhir/(?:mapping|validation)/' },
      to: { path: '^src/', pathNot: '^src/(?:model/|fhir/(?:mapping|validation)/|fhir/fhir-id\\.ts$)' },
    },
    {
      name: 'mapping-does-no-io',
      comment:
        'No file system, network, HTTP framework or FHIR client in the mapping and the validation. One exception: ' +
        'schema-validators.ts reads the validators generated ahead of time (and the official schema) once, when it ' +
        'is loaded, never on a request.',
      severity: 'error',
      from: { path: '^src/fhir/(?:mapping|validation)/', pathNot: '^src/fhir/validation/schema-validators\\.ts$' },
      to: { path: [IO_MODULES, IO_PACKAGES] },
    },
    {
      name: 'mapping-does-no-network-io',
      severity: 'error',
      from: { path: '^src/fhir/validation/schema-validators\\.ts$' },
      to: { path: [IO_MODULES, IO_PACKAGES], pathNot: '^(?:node:)?fs$' },
    },
    {
      name: 'model-does-no-io',
      severity: 'error',
      from: { path: '^src/model/' },
      to: { path: [IO_MODULES, IO_PACKAGES] },
    },
    {
      name: 'client-knows-no-model',
      comment: 'The FHIR client talks FHIR only: the FHIR id rule and the configuration of its credentials.',
      severity: 'error',
      from: { path: '^src/fhir/client/' },
      to: { path: '^src/', pathNot: '^src/(?:fhir/client/|fhir/fhir-id\\.ts$|config\\.ts$)' },
    },
    {
      name: 'use-cases-know-no-http',
      comment: 'Use cases never see the HTTP layer (status codes, headers), the web framework or the process entry.',
      severity: 'error',
      from: { path: USE_CASE },
      to: { path: ['^src/(?:http/|server\\.ts$)', HTTP_PACKAGES] },
    },
    {
      name: 'only-the-entry-starts-the-embedded-server',
      comment: 'The service side never imports the embedded FHIR server; src/server.ts starts it in the default mode.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(?:embedded-fhir/|server\\.ts$)' },
      to: { path: '^src/embedded-fhir/' },
    },
    {
      name: 'embedded-server-imports-no-service',
      comment: 'The embedded FHIR server is a wing of its own, as a separate FHIR server would be.',
      severity: 'error',
      from: { path: '^src/embedded-fhir/', pathNot: '^src/embedded-fhir/main\\.ts$' },
      to: { path: '^src/', pathNot: '^src/embedded-fhir/' },
    },
    {
      name: 'embedded-entry-imports-only-logging',
      severity: 'error',
      from: { path: '^src/embedded-fhir/main\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(?:embedded-fhir/|logging\\.ts$|config\\.ts$)' },
    },
    {
      name: 'lower-floors-never-import-http',
      comment: 'Nothing below the HTTP floor imports it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(?:http/|server\\.ts$)' },
      to: { path: '^src/(?:http/|server\\.ts$)' },
    },
    {
      name: 'no-unresolvable-imports',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // A worktree may link node_modules from another checkout: packages must still resolve to node_modules/<name>.
    preserveSymlinks: true,
    exclude: { path: '^src/fhir/validation/generated/' },
    // Type-only imports count: a floor must not know a higher floor's types either.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts', '.json'],
      // Type-only packages (@medplum/fhirtypes) name their entry in `types` alone.
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
