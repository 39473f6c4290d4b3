// Access tokens: a bearer JWT verified against the issuer's JWKS (signature, iss, aud, exp), and the caller it
// names. Refusals are 401 problems with WWW-Authenticate; keys that cannot be fetched a 503.
import {
  type CryptoKey,
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyOptions,
  type JWTVerifyResult,
  jwtVerify,
} from 'jose';
import { type Caller, carePlanGrants, clean, patientReference, personOf, scopesOf } from '../auth/caller.js';
import type { AppConfig } from '../config.js';
import { ApiProblem } from './problems.js';

export const REALM = 'Bearer realm="shared-care-plans"';
/** Asymmetric algorithms only: a shared-secret (HS*) or `none` token is never accepted. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export function unauthorized(description?: string): ApiProblem {
  return new ApiProblem(
    'unauthorized',
    description
      ? `the access token is not accepted: ${description}`
      : 'send an access token: Authorization: Bearer <token>',
    {
      headers: {
        'www-authenticate': description
          ? `${REALM}, error="invalid_token", error_description="${description}"`
          : REALM,
      },
      denied: true,
    },
  );
}

/** Why jose refused a token, in words an integrator can act on (never the token itself). */
function describeTokenError(error: unknown): string | undefined {
  const { code, claim } = error as { code?: string; claim?: string };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'it has expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'iss') return 'its issuer (iss) is not trusted here';
      if (claim === 'aud') return 'its audience (aud) is not this service';
      if (claim === 'nbf') return 'it is not valid yet (nbf)';
      if (claim === 'exp') return 'it has no expiry (exp)';
      return `its ${clean(String(claim)).replace(/\W/g, '')} claim is not valid`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'its signature is not valid';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'it is not signed with a key the issuer publishes';
    case 'ERR_TOO_MANY_KEYS_WITHOUT_KID':
      return `it has no kid, and the issuer publishes more than ${MAX_KEYS_WITHOUT_KID} keys it could be signed with`;
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'it is not a signed JWT with an allowed algorithm';
    default:
      return undefined; // the key set could not be fetched: not the caller's fault
  }
}

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length > 0 ? clean(value) : undefined;

export function callerFromPayload(payload: JWTPayload): Caller {
  const claims = payload as Record<string, unknown>;
  const subject = str(payload.sub);
  return {
    kind: 'token',
    clientId: str(claims.client_id) ?? str(claims.azp) ?? subject ?? 'unknown client',
    subject,
    fhirUser: str(claims.fhirUser),
    ...(personOf(claims.fhirUser).person ? { person: personOf(claims.fhirUser).person } : {}),
    patientClaim: patientReference(claims.patient),
    grants: carePlanGrants(scopesOf(claims)),
    subscriptionGrants: carePlanGrants(scopesOf(claims), 'Subscription'),
  };
}

/**
 * Why a verified token's fhirUser cannot be accepted, if it cannot: not a Patient, RelatedPerson, Practitioner or
 * PractitionerRole by a FHIR id, or a Patient other than the token's own patient (a patient/ token acts for its
 * patient only).
 */
export function fhirUserRefusal(payload: JWTPayload): string | undefined {
  const claims = payload as Record<string, unknown>;
  const { person, error } = personOf(claims.fhirUser);
  if (error) return error;
  const patient = patientReference(claims.patient);
  if (person?.startsWith('Patient/') && patient && person !== patient) {
    return 'its fhirUser is a Patient other than its patient claim';
  }
  return undefined;
}

/** Keys tried for a token without `kid`: enough for a key rotation, too few for a big JWKS to cost much. */
export const MAX_KEYS_WITHOUT_KID = 5;

type KeySet = Parameters<typeof jwtVerify>[1] & ((...args: never[]) => unknown);

/**
 * jwtVerify, and for a token without `kid` when the JWKS holds several keys it could be signed with (during a
 * key rotation): each of them, at most MAX_KEYS_WITHOUT_KID. Accepted only when exactly one key verifies it.
 */
export async function verifyJwt(
  token: string,
  jwks: KeySet,
  options: JWTVerifyOptions,
): Promise<JWTVerifyResult> {
  try {
    return await jwtVerify(token, jwks, options);
  } catch (error) {
    const candidates = error as Partial<AsyncIterable<CryptoKey>> & { code?: string };
    if (candidates.code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS' || !candidates[Symbol.asyncIterator])
      throw error;
    if (decodeProtectedHeader(token).kid !== undefined) throw error; // two keys with one kid: the issuer's mistake
    // Each key the signature verifies with: its result, or the claim error (expired, ...) that followed.
    const verified: (JWTVerifyResult | { claimError: unknown })[] = [];
    let tried = 0;
    for await (const key of candidates as AsyncIterable<CryptoKey>) {
      if (++tried > MAX_KEYS_WITHOUT_KID) throw tooManyKeys();
      try {
        verified.push(await jwtVerify(token, key, options));
      } catch (keyError) {
        if ((keyError as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
          verified.push({ claimError: keyError });
      }
    }
    if (verified.length !== 1) throw error; // none, or ambiguous: "not signed with a key the issuer publishes"
    const [result] = verified;
    if ('claimError' in result) throw result.claimError;
    return result;
  }
}

class FhirUserRefused extends Error {}

class TooManyKeys extends Error {
  readonly code = 'ERR_TOO_MANY_KEYS_WITHOUT_KID';
}
const tooManyKeys = () => new TooManyKeys('too many candidate keys for a token without kid');

/** Verifies a bearer token: signature by a key of the JWKS, iss, aud, exp (required). Throws a 401 or 503 problem. */
export function tokenVerifier(config: AppConfig): (token: string) => Promise<Caller> {
  const jwks = createRemoteJWKSet(new URL(config.authJwksUrl as string), {
    timeoutDuration: 5_000,
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  });
  // A token already verified is not verified again until it expires (at most 5 minutes): the signature check
  // costs about as much CPU as a whole bare request. Keyed by the whole token, signature included.
  const verified = new Map<string, { caller: Caller; until: number }>();
  return async (token) => {
    const now = Date.now();
    const hit = verified.get(token);
    if (hit && hit.until > now) return hit.caller;
    if (hit) verified.delete(token);
    try {
      const { payload } = await verifyJwt(token, jwks, {
        issuer: config.authIssuer,
        audience: config.authAudience,
        algorithms: ALGORITHMS,
        clockTolerance: config.authClockToleranceSeconds,
        requiredClaims: ['exp'],
      });
      const refusal = fhirUserRefusal(payload);
      if (refusal) throw new FhirUserRefused(refusal);
      const caller = callerFromPayload(payload);
      const until = Math.min(now + 300_000, (payload.exp as number) * 1000);
      if (verified.size >= 1000) verified.delete(verified.keys().next().value as string);
      verified.set(token, { caller, until });
      return caller;
    } catch (error) {
      if (error instanceof FhirUserRefused) throw unauthorized(error.message);
      const description = describeTokenError(error);
      if (description) throw unauthorized(description);
      throw new ApiProblem(
        'auth-unavailable',
        'the keys to check access tokens cannot be fetched now; retry',
        {
          headers: { 'retry-after': '5' },
        },
      );
    }
  };
}
