/**
 * Embedded, in-process FHIR R4 server on loopback: Medplum's FhirRouter over an in-memory repository,
 * served over real HTTP (node:http) at `http://<host>:<port>/fhir`.
 *
 * It is the service's default FHIR server and the FHIR server of the tests. Every request goes through
 * one async mutex, so requests never interleave: conditional creates cannot race and a transaction's
 * undo log only ever holds that transaction's writes. All data lives in memory and is lost on exit.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getStatus, normalizeErrorString } from '@medplum/core';
import type { FhirRequest, HttpMethod } from '@medplum/fhir-router';
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { loadFhirDefinitions } from './definitions.js';
import { fhirRoute } from './logging.js';
import { Mutex } from './mutex.js';
import { EmbeddedRepository } from './repository.js';
import { createEmbeddedRouter } from './router.js';

export interface EmbeddedFhirServer {
  readonly baseUrl: string;
  close(): Promise<void>;
}

export interface EmbeddedFhirServerOptions {
  host?: string;
  port?: number;
  logger?: Logger;
}

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
/** Largest accepted request body. */
export const BODY_LIMIT_BYTES = 10 * 1024 * 1024;
const FORCE_CLOSE_AFTER_MS = 10_000;
const BASE_PATH = '/fhir';
const METHODS = new Set<HttpMethod>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const INSTANCE_INTERACTIONS = new Set(['read', 'vread', 'create', 'update', 'patch']);

interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

/**
 * Starts an embedded FHIR server. Resolves once it listens; `baseUrl` then is `http://<host>:<port>/fhir`.
 * @param options - host (default 127.0.0.1), port (default 0 = random), pino logger (default: a new one).
 * @returns The running server.
 */
export async function startEmbeddedFhirServer(
  options: EmbeddedFhirServerOptions = {},
): Promise<EmbeddedFhirServer> {
  const logger = options.logger ?? pino({ name: 'embedded-fhir-server' });
  const host = options.host ?? '127.0.0.1';
  const definitions = loadFhirDefinitions();
  const repo = new EmbeddedRepository();
  let baseUrl = '';
  const router = createEmbeddedRouter(repo, { baseUrl: () => baseUrl });
  const mutex = new Mutex();

  let inFlight = 0;
  let closing = false;
  let onIdle: (() => void) | undefined;

  const execute = async (req: IncomingMessage): Promise<HttpResult> => {
    const rawUrl = req.url ?? '/';
    const queryStart = rawUrl.indexOf('?');
    const path = queryStart >= 0 ? rawUrl.slice(0, queryStart) : rawUrl;
    const query = queryStart >= 0 ? rawUrl.slice(queryStart) : '';
    if (path !== BASE_PATH && !path.startsWith(`${BASE_PATH}/`)) {
      return error(404, 'not-found', `No such endpoint: ${path} (the FHIR base is ${BASE_PATH})`);
    }
    const requestMethod = req.method === 'HEAD' ? 'GET' : (req.method as HttpMethod);
    if (req.method === 'OPTIONS') {
      return { status: 204, headers: { Allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' } };
    }
    if (!METHODS.has(requestMethod)) {
      return error(405, 'not-supported', `Method ${req.method} is not supported`);
    }
    let body: unknown;
    if (requestMethod === 'POST' || requestMethod === 'PUT' || requestMethod === 'PATCH') {
      const parsed = await readRequestBody(req);
      if ('error' in parsed) {
        return parsed.error;
      }
      body = parsed.body;
    }
    // Leading '//' would make the router's URL parser read a host name: keep exactly one slash
    const url = `/${path.slice(BASE_PATH.length).replace(/^\/+/, '')}${query}`;
    const interaction = router.find(requestMethod, url)?.data?.interaction;
    const fhirRequest: FhirRequest = {
      method: requestMethod,
      url,
      pathname: '',
      params: {},
      query: {},
      body,
      headers: req.headers,
      config: { transactions: true },
    };
    const [outcome, resource] = await mutex.run(() => router.handleRequest(fhirRequest, repo));
    return toHttpResult(getStatus(outcome), outcome, resource, interaction, req.headers, baseUrl);
  };

  const server = createServer((req, res) => {
    inFlight++;
    const started = performance.now();
    // Logged by route shape (/fhir/CarePlan/:id): ids and query values are PHI.
    const route = fhirRoute(req.url, BASE_PATH);
    // A client that went away (closed the connection mid-request) is routine, not a server error.
    const aborted = () => req.destroyed || res.destroyed;
    execute(req)
      .catch((err: unknown): HttpResult | undefined => {
        if (aborted()) {
          logger.debug({ method: req.method, route }, 'embedded FHIR request aborted by the client');
          return undefined; // nobody to answer
        }
        logger.error({ err, method: req.method, route }, 'embedded FHIR server: unexpected error');
        return error(500, 'exception', `Internal error: ${normalizeErrorString(err)}`);
      })
      .then((result) => {
        if (!result) return;
        send(res, result, closing);
        logger.debug(
          {
            method: req.method,
            route,
            status: result.status,
            ms: Math.round(performance.now() - started),
          },
          'embedded FHIR request',
        );
      })
      .catch((err: unknown) =>
        aborted()
          ? logger.debug({ method: req.method, route }, 'embedded FHIR request aborted by the client')
          : logger.error({ err }, 'embedded FHIR server: could not send response'),
      )
      .finally(() => {
        inFlight--;
        if (inFlight === 0) {
          onIdle?.();
        }
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger.error({ err }, 'embedded FHIR server error'));
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://${urlHost(host)}:${port}${BASE_PATH}`;
  logger.warn(
    { baseUrl, definitionsLoadMs: Math.round(definitions.loadMs), definitionsCached: definitions.cached },
    'Embedded FHIR server: all FHIR data is kept in memory only and is LOST when this process exits; ' +
      'use a real FHIR server for anything that must be kept',
  );

  let closed: Promise<void> | undefined;
  return {
    baseUrl,
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve, reject) => {
        closing = true;
        // Stops accepting connections; resolves once every connection has ended. Requests in flight finish
        // (their responses carry Connection: close); idle keep-alive connections are closed now.
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
        onIdle = () => server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), FORCE_CLOSE_AFTER_MS).unref();
      });
      return closed;
    },
  };
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') {
    return '127.0.0.1';
  }
  if (host === '::') {
    return '[::1]';
  }
  return host.includes(':') ? `[${host}]` : host;
}

async function readRequestBody(req: IncomingMessage): Promise<{ body: unknown } | { error: HttpResult }> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > BODY_LIMIT_BYTES) {
    return { error: tooLarge() };
  }
  const raw = await new Promise<Buffer | undefined>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_LIMIT_BYTES) {
        // Answer 413 now; the rest of the upload is discarded and the connection closed after the answer
        chunks.length = 0;
        resolve(undefined);
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
  if (raw === undefined) {
    return { error: tooLarge() };
  }
  if (raw.length === 0) {
    return { body: undefined };
  }
  const text = raw.toString('utf8');
  const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (contentType === 'application/x-www-form-urlencoded') {
    const form: Record<string, string | string[]> = Object.create(null);
    for (const [key, value] of new URLSearchParams(text)) {
      const previous = form[key];
      form[key] =
        previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
    }
    return { body: form };
  }
  if (contentType && contentType !== 'application/json' && !contentType.endsWith('+json')) {
    return {
      error: error(
        415,
        'not-supported',
        `Unsupported Content-Type ${contentType}; send application/fhir+json`,
      ),
    };
  }
  try {
    return { body: JSON.parse(text) };
  } catch (err) {
    return { error: error(400, 'invalid', `Request body is not valid JSON: ${normalizeErrorString(err)}`) };
  }
}

function tooLarge(): HttpResult {
  const result = error(413, 'too-costly', `Request body larger than ${BODY_LIMIT_BYTES} bytes`);
  result.headers.Connection = 'close';
  return result;
}

function toHttpResult(
  status: number,
  outcome: OperationOutcome,
  resource: Resource | undefined,
  interaction: string | undefined,
  requestHeaders: IncomingHttpHeaders,
  baseUrl: string,
): HttpResult {
  const headers: Record<string, string> = {};
  const versionId = resource?.meta?.versionId;
  if (resource?.id && versionId && interaction && INSTANCE_INTERACTIONS.has(interaction)) {
    const etag = `W/"${versionId}"`;
    headers.ETag = etag;
    if (resource.meta?.lastUpdated) {
      headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    }
    if (status === 201) {
      headers.Location = `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${versionId}`;
    }
    const ifNoneMatch = requestHeaders['if-none-match'];
    if ((interaction === 'read' || interaction === 'vread') && ifNoneMatch) {
      const tags = ifNoneMatch.split(',').map((t) => t.trim().replace(/^W\//, ''));
      if (tags.includes(`"${versionId}"`) || tags.includes('*')) {
        return { status: 304, headers };
      }
    }
  }
  const prefer = String(requestHeaders.prefer ?? '');
  if (status < 300 && interaction === 'batch' && /return=minimal/.test(prefer) && resource) {
    // A batch or transaction still answers with its response Bundle; return=minimal applies to each entry
    // (FHIR R4 http.html#ops): the entries keep their response (location, etag, lastModified), not the resource.
    const bundle = resource as Bundle;
    return {
      status,
      headers,
      body: { ...bundle, entry: bundle.entry?.map(({ resource: _resource, ...entry }) => entry) },
    };
  }
  if (status < 300 && interaction && /return=minimal/.test(prefer)) {
    return { status, headers };
  }
  if (status < 300 && interaction && /return=OperationOutcome/i.test(prefer)) {
    return { status, headers, body: outcome };
  }
  return { status, headers, body: resource ?? withDiagnostics(outcome) };
}

/** Copies each issue's details.text into diagnostics where missing: clients often only show diagnostics. */
function withDiagnostics(outcome: OperationOutcome): OperationOutcome {
  if (!outcome.issue?.some((issue) => !issue.diagnostics && issue.details?.text)) {
    return outcome;
  }
  return {
    ...outcome,
    issue: outcome.issue.map((issue) =>
      issue.diagnostics || !issue.details?.text ? issue : { ...issue, diagnostics: issue.details.text },
    ),
  };
}

function error(status: number, code: string, diagnostics: string): HttpResult {
  const outcome = {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, details: { text: diagnostics }, diagnostics }],
  };
  return { status, headers: {}, body: outcome };
}

function send(res: ServerResponse, result: HttpResult, closing: boolean): void {
  if (res.headersSent || res.destroyed) {
    return;
  }
  const headers: Record<string, string | number> = { ...result.headers };
  if (closing) {
    headers.Connection = 'close';
  }
  if (result.body === undefined) {
    res.writeHead(result.status, headers);
    res.end();
    return;
  }
  const payload = Buffer.from(JSON.stringify(result.body), 'utf8');
  headers['Content-Type'] = FHIR_JSON;
  headers['Content-Length'] = payload.length;
  res.writeHead(result.status, headers);
  res.end(payload);
}
