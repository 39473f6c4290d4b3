// Tests of the secured service: a JWKS on loopback with jose-made keys, tokens minted with any claims, and the
// service (AUTH_MODE=jwt) over the embedded FHIR server, with every log line of both captured.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { type Logger, pino } from 'pino';
import type { AppConfig } from '../../src/config.js';
import { loadConfig } from '../../src/config.js';
import { type EmbeddedFhirServer, startEmbeddedFhirServer } from '../../src/embedded-fhir/server.js';
import { buildApp } from '../../src/http/app.js';
import { embeddedFhirLogger, loggerOptions } from '../../src/logging.js';

export const ISSUER = 'https://auth.test.example/realms/care';
export const AUDIENCE = 'https://care-plans.test.example';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/** A loopback HTTP server answering `handler`; closed by `close()`. */
export async function loopback(
  handler: Parameters<typeof createServer>[1],
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Issuer {
  jwksUrl: string;
  /** A token signed by the issuer's key (kid "k1"), valid for 5 minutes unless the claims say otherwise. */
  token(claims?: JWTPayload & Record<string, unknown>, options?: TokenOptions): Promise<string>;
  /** How often the JWKS was fetched. */
  fetches(): number;
  close(): Promise<void>;
}

export interface TokenOptions {
  /** Sign with another key pair that claims the issuer's kid (a forged token). */
  forged?: boolean;
  issuer?: string;
  audience?: string;
  /** Seconds from now; negative = already expired. */
  expiresIn?: number;
}

export async function startIssuer(): Promise<Issuer> {
  const real = await generateKeyPair('RS256', { extractable: true });
  const forger = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(real.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  let fetches = 0;
  const server = await loopback((_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  const sign = (key: PrivateKey, claims: JWTPayload, options: TokenOptions) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.audience ?? AUDIENCE)
      .setIssuedAt(now - 10)
      .setExpirationTime(now + (options.expiresIn ?? 300))
      .sign(key);
  };
  return {
    jwksUrl: `${server.url}/jwks.json`,
    token: (claims = {}, options = {}) =>
      sign(options.forged ? forger.privateKey : real.privateKey, claims, options),
    fetches: () => fetches,
    close: () => server.close(),
  };
}

/** Every log line written, as text and parsed. */
export class LogCapture {
  readonly lines: string[] = [];
  readonly stream = new Writable({
    write: (chunk, _encoding, done) => {
      for (const line of String(chunk).split('\n')) if (line) this.lines.push(line);
      done();
    },
  });
  get text(): string {
    return this.lines.join('\n');
  }
  records(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line));
  }
}

export interface SecureService {
  app: FastifyInstance;
  config: AppConfig;
  fhirBaseUrl: string;
  logs: LogCapture;
  fhir<T>(path: string): Promise<T>;
  close(): Promise<void>;
}

/**
 * The service with AUTH_MODE=jwt (unless env says otherwise) on its own embedded FHIR server, logging at
 * LOG_LEVEL=debug (unless env says otherwise) into `logs`, through the same logger configuration server.ts uses.
 */
export async function startSecureService(
  issuer: Issuer | undefined,
  env: Record<string, string> = {},
): Promise<SecureService> {
  const logs = new LogCapture();
  const base = loadConfig({
    LOG_LEVEL: 'debug',
    CHANGE_FEED_SETTLE_MS: '0',
    ...(issuer
      ? { AUTH_MODE: 'jwt', AUTH_JWKS_URL: issuer.jwksUrl, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }
      : {}),
    ...env,
  });
  const logger: Logger = pino(loggerOptions(base), logs.stream);
  const embedded: EmbeddedFhirServer = await startEmbeddedFhirServer({ logger: embeddedFhirLogger(logger) });
  const config: AppConfig = { ...base, fhirBaseUrl: embedded.baseUrl };
  const app = await buildApp(config, { logger });
  await app.ready();
  return {
    app,
    config,
    fhirBaseUrl: embedded.baseUrl,
    logs,
    async fhir<T>(path: string) {
      const response = await fetch(`${embedded.baseUrl}/${path}`, {
        headers: { accept: 'application/fhir+json' },
      });
      return (await response.json()) as T;
    },
    async close() {
      await app.close();
      await embedded.close();
    },
  };
}
