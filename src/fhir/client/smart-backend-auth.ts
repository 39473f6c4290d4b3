// SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html): the service gets its own
// access token for the FHIR server with the OAuth client_credentials grant, authenticating with a private_key_jwt
// client assertion (RFC 7523) signed RS384 or ES384 with its private key. The token is cached, renewed shortly
// before it expires, and renewed at once when the FHIR server answers 401 (see FhirGateway.onUnauthorized).
import { createPublicKey, type JsonWebKey, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { SmartBackendConfig } from '../../config.js';
import { FhirServerError } from './gateway.js';

export interface SmartBackendAuthOptions extends SmartBackendConfig {
  /** How long before expiry a token is renewed (seconds). Default 60, at most half the token's lifetime. */
  renewBeforeSeconds?: number;
  timeoutMs?: number;
  /** For tests: the clock, in ms. */
  now?: () => number;
  fetch?: typeof fetch;
}

interface CachedToken {
  authorization: string;
  /** When to stop using it (ms), already shortened by the renewal margin. */
  renewAt: number;
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * The public half of the signing key as a JWK Set, for registering this service with an authorization server
 * (SMART Backend Services registers a client's public keys as a JWK Set, given by value or by URL). Only public
 * members: derived from the public key, never from the private one.
 */
export function publicJwks(config: Pick<SmartBackendConfig, 'privateKey' | 'keyId' | 'algorithm'>): {
  keys: JsonWebKey[];
} {
  const jwk = createPublicKey(config.privateKey).export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: config.keyId, alg: config.algorithm, use: 'sig', key_ops: ['verify'] }] };
}

export class SmartBackendAuth {
  private cached?: CachedToken;
  private pending?: Promise<CachedToken>;
  private readonly now: () => number;
  private readonly fetch: typeof fetch;
  /** How many tokens were obtained (for tests and metrics). */
  tokensObtained = 0;

  constructor(private readonly options: SmartBackendAuthOptions) {
    this.now = options.now ?? Date.now;
    this.fetch = options.fetch ?? fetch;
  }

  /** The Authorization header value: the cached token while it is fresh, else a new one (one request at a time). */
  async authorization(): Promise<string> {
    if (this.cached && this.now() < this.cached.renewAt) return this.cached.authorization;
    this.pending ??= this.obtain().finally(() => {
      this.pending = undefined;
    });
    this.cached = await this.pending;
    return this.cached.authorization;
  }

  /** The FHIR server refused this token: forget it (unless a newer one has replaced it already). */
  invalidate(authorization: string): void {
    if (this.cached?.authorization === authorization) this.cached = undefined;
  }

  /** The signed client assertion: iss = sub = client id, aud = token URL, exp within 5 minutes, unique jti. */
  async clientAssertion(): Promise<string> {
    const { algorithm, keyId, clientId, tokenUrl, privateKey } = this.options;
    const now = Math.floor(this.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: algorithm, kid: keyId, typ: 'JWT' })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .setJti(randomUUID())
      .sign(privateKey);
  }

  private async obtain(): Promise<CachedToken> {
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: this.options.scope,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await this.clientAssertion(),
    });
    let response: Response;
    try {
      response = await this.fetch(this.options.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (error) {
      throw new FhirServerError(
        'unavailable',
        `the FHIR server's token endpoint could not be reached (${(error as Error).name})`,
      );
    }
    const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (!response.ok || typeof answer.access_token !== 'string') {
      // A refused client (400/401: invalid_client, invalid_scope...) will not get better by retrying: not retried.
      const code = typeof answer.error === 'string' ? answer.error.replace(/[^\w.-]/g, '').slice(0, 40) : '';
      const retryable = response.status >= 500 || response.status === 429;
      throw new FhirServerError(
        retryable ? 'unavailable' : 'upstream',
        `the FHIR server's token endpoint refused to issue a token (${response.status}${code ? ` ${code}` : ''})`,
        retryable ? undefined : 401,
      );
    }
    const tokenType = typeof answer.token_type === 'string' ? answer.token_type : 'bearer';
    if (tokenType.toLowerCase() !== 'bearer') {
      throw new FhirServerError(
        'upstream',
        `the token endpoint issued a ${tokenType} token, not a bearer token`,
        401,
      );
    }
    const lifetime = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : 300;
    const margin = Math.min(this.options.renewBeforeSeconds ?? 60, lifetime / 2);
    this.tokensObtained++;
    return {
      authorization: `Bearer ${answer.access_token}`,
      renewAt: this.now() + (lifetime - margin) * 1000,
    };
  }
}
