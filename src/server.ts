// Process entry: read config, start the embedded FHIR server when no external one is configured, build the app,
// listen, and shut down gracefully on SIGTERM/SIGINT.
import { setFlagsFromString } from 'node:v8';
import closeWithGrace from 'close-with-grace';
import { type LoggerOptions, pino } from 'pino';
import { ConfigError, loadConfig } from './config.js';
import { buildApp, loggerOptions } from './http/app.js';
import { embeddedFhirLogger } from './logging.js';

async function main() {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`shared-care-plans: invalid configuration: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino(loggerOptions(config) as LoggerOptions);
  // Loaded only when used: the embedded server (Medplum's FHIR router and definitions) adds about 100 ms and 8 MB
  // to the start of a service that talks to an external FHIR server.
  const embedded = config.fhirBaseUrl
    ? undefined
    : await (await import('./embedded-fhir/server.js')).startEmbeddedFhirServer({
        port: config.embeddedFhirPort,
        logger: embeddedFhirLogger(logger),
      });
  const app = await buildApp(
    { ...config, fhirBaseUrl: config.fhirBaseUrl ?? (embedded?.baseUrl as string) },
    { logger },
  );
  app.addHook('onClose', async () => {
    await embedded?.close();
  });
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    // Connections of requests that finish during the shutdown turn idle later than server.close() looks:
    // keep closing idle keep-alive connections until the last request is done.
    const closer = setInterval(() => app.server.closeIdleConnections(), 100);
    try {
      await app.close();
    } finally {
      clearInterval(closer);
    }
  });
  await app.listen({ host: config.host, port: config.port });
  // V8 grows the old generation up to 4x the live heap between full collections; with about 30 MB live under
  // load that made the process peak at ~210 MB RSS (bench/README.md). A fixed, smaller factor keeps the peak near
  // 140 MB at the cost of more frequent (concurrent) marking. V8 reads this flag at every collection, so it takes
  // effect when set; it is set once listening, so that start-up (loading, compiling validators) is not slowed by
  // the extra collections; it caps nothing (a bigger live heap still gets the memory).
  if (config.heapGrowthPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowthPercent}`);
  app.log.info(
    { fhirServer: embedded ? 'embedded' : 'external' },
    `shared-care-plans ready; API docs at /docs`,
  );
}

main().catch((error) => {
  process.stderr.write(`shared-care-plans failed to start: ${error?.stack ?? error}\n`);
  process.exit(1);
});
