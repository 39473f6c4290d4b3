/**
 * Runs the embedded FHIR server as its own process:
 *   EMBEDDED_FHIR_PORT (default 8103), EMBEDDED_FHIR_HOST (default 127.0.0.1), LOG_LEVEL, LOG_FORMAT (as for the
 *   service; requests are logged at debug by route shape, without ids or query values).
 * Prints one JSON log line with the base URL once listening; stops cleanly on SIGTERM/SIGINT.
 */
import type { Logger } from 'pino';
import { standaloneFhirLogger } from '../logging.js';
import { startEmbeddedFhirServer } from './server.js';

let logger: Logger;
try {
  logger = standaloneFhirLogger(process.env);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
const host = process.env.EMBEDDED_FHIR_HOST || '127.0.0.1';
const portText = process.env.EMBEDDED_FHIR_PORT || '8103';
const port = Number(portText);
if (!/^\d+$/.test(portText) || port > 65535) {
  logger.fatal({ EMBEDDED_FHIR_PORT: portText }, 'EMBEDDED_FHIR_PORT must be an integer between 0 and 65535');
  process.exit(1);
}

try {
  const server = await startEmbeddedFhirServer({ host, port, logger });
  logger.info({ baseUrl: server.baseUrl }, 'embedded FHIR server listening');
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      return;
    }
    stopping = true;
    logger.info({ signal }, 'embedded FHIR server stopping');
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'embedded FHIR server did not close cleanly');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (err) {
  logger.fatal({ err, host, port }, 'embedded FHIR server could not start');
  process.exit(1);
}
