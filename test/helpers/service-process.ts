// A service instance in a process of its own (for tests that kill one): the real app from the environment,
// pointed at FHIR_BASE_URL, on a free port. It reports its address and its delivery worker's id over IPC.
import type { AddressInfo } from 'node:net';
import type { AppConfig } from '../../src/config.js';
import { loadConfig } from '../../src/config.js';
import { buildApp } from '../../src/http/app.js';
import { quietLogger } from './service.js';

const config = loadConfig(process.env);
const app = await buildApp(config as AppConfig, { logger: quietLogger });
await app.listen({ port: 0, host: '127.0.0.1' });
const { port } = app.server.address() as AddressInfo;
process.send?.({ url: `http://127.0.0.1:${port}`, worker: app.deliveryWorker.instance });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
