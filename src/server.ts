// Process entry: read config, start the embedded FHIR server when no external one is configured, build the app,
// listen, and shut down gracefully on SIGTERM/SIGINT.
import closeWithGrace from 'close-with-grace';
import { type LoggerOptions, pino } from 'pino';
import { buildApp, loggerOptions } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { startEmbeddedFhirServer } from './fhir/embedded/server.js';
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
  const embedded = config.fhirBaseUrl
    ? undefined
    : await startEmbeddedFhirServer({
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
  app.log.info(
    { fhirServer: embedded ? 'embedded' : 'external' },
    `shared-care-plans ready; API docs at /docs`,
  );
}

main().catch((error) => {
  process.stderr.write(`shared-care-plans failed to start: ${error?.stack ?? error}\n`);
  process.exit(1);
});
