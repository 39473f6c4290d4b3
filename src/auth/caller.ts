// Who is calling, and what SMART on FHIR scopes let them do with care plans. Pure: no I/O.
//
// Scopes (SMART App Launch 2.x, "Scopes and Launch Context"): `<level>/<resource>.<permissions>` with level
// patient | user | system, resource CarePlan (or `*`), and v2 permissions a subset of `cruds` in that order
// (c create, r read, u update, d delete, s search), or the v1 forms `.read` (= rs), `.write` (= cud) and `.*`
// (= cruds). Granular scopes with a query (`patient/CarePlan.rs?category=...`) are not honoured: they grant
// nothing here, since this service cannot tell which plans such a filter would allow.

import { isFhirId, parseLiteralReference } from '../fhir/fhir-id.js';

export type Permission = 'c' | 'r' | 'u' | 'd' | 's';
export type ScopeLevel = 'patient' | 'user' | 'system';

export interface ScopeGrant {
  level: ScopeLevel;
  permissions: ReadonlySet<Permission>;
}

export interface Caller {
  /** `token`: a verified JWT; `anonymous`: AUTH_MODE=none. */
  kind: 'token' | 'anonymous';
  /** The OAuth client: the token's client_id, else azp, else sub. */
  clientId?: string;
  /** The token's sub (a user or the client itself). */
  subject?: string;
  /** The token's fhirUser claim, when present (as the token gives it). */
  fhirUser?: string;
  /**
   * The person the fhirUser claim names, as `Type/id` (Patient, RelatedPerson, Practitioner, PractitionerRole):
   * every write of the caller is attributed to this person. Absent for system tokens and tokens without fhirUser.
   */
  person?: string;
  /** The token's patient claim, as Patient/<id>. */
  patientClaim?: string;
  grants: ScopeGrant[];
  /** The grants on Subscription (webhook subscriptions), as `grants` are on CarePlan. */
  subscriptionGrants?: ScopeGrant[];
  /**
   * Set for the current request when only a patient/ scope allows its operation: the caller may then only see
   * and change plans whose subject is this patient (Patient/<id>).
   */
  patient?: string;
}

export const ANONYMOUS: Caller = Object.freeze({ kind: 'anonymous', grants: [] }) as Caller;
export const ANONYMOUS_DISPLAY = 'anonymous (AUTH_MODE=none)';

const V1: Record<string, Permission[]> = {
  read: ['r', 's'],
  write: ['c', 'u', 'd'],
  '*': ['c', 'r', 'u', 'd', 's'],
};

export type ScopedResource = 'CarePlan' | 'Subscription';

/** The grants on CarePlan among a token's scopes (scope claim: a space-separated string, or scp: an array). */
export function carePlanGrants(
  scopes: readonly string[],
  resource: ScopedResource = 'CarePlan',
): ScopeGrant[] {
  const grants: ScopeGrant[] = [];
  for (const scope of scopes) {
    const match = /^(patient|user|system)\/([A-Za-z]+|\*)\.([a-z*]+)$/.exec(scope);
    if (match && match[2] !== resource && match[2] !== '*') continue;
    if (!match) continue;
    const [, level, , permissions] = match;
    let granted: Permission[] | undefined = V1[permissions];
    if (!granted && /^c?r?u?d?s?$/.test(permissions)) granted = [...permissions] as Permission[];
    if (granted?.length) grants.push({ level: level as ScopeLevel, permissions: new Set(granted) });
  }
  return grants;
}

/** The scopes of a JWT payload: `scope` (RFC 8693/9068, space-separated) or `scp` (string or array). */
export function scopesOf(payload: Record<string, unknown>): string[] {
  const raw = payload.scope ?? payload.scp;
  if (typeof raw === 'string') return raw.split(' ').filter(Boolean);
  if (Array.isArray(raw)) return raw.filter((s): s is string => typeof s === 'string');
  return [];
}

/** The patient claim (an id, or Patient/<id>) as Patient/<id>; undefined when absent or not a FHIR id. */
export function patientReference(claim: unknown): string | undefined {
  if (typeof claim !== 'string') return undefined;
  const id = claim.startsWith('Patient/') ? claim.slice('Patient/'.length) : claim;
  return isFhirId(id) ? `Patient/${id}` : undefined;
}

export type Decision =
  | { allowed: true; patient?: string }
  | { allowed: false; reason: string; needed: string[] };

/**
 * May the caller do `need` (a permission on CarePlan, or `any` for the mapping operations, which read and store
 * nothing)? A system/ or user/ grant allows it on every plan; a patient/ grant only on the plans of the
 * token's patient, which the answer then names.
 */
export function decide(
  caller: Caller,
  need: Permission | 'any',
  resource: ScopedResource = 'CarePlan',
): Decision {
  if (caller.kind === 'anonymous') return { allowed: true };
  const grants = resource === 'CarePlan' ? caller.grants : (caller.subscriptionGrants ?? []);
  const allows = (g: ScopeGrant) => need === 'any' || g.permissions.has(need);
  if (grants.some((g) => g.level !== 'patient' && allows(g))) return { allowed: true };
  const needed =
    need === 'any'
      ? [`system/${resource}.*`, `user/${resource}.*`, `patient/${resource}.*`]
      : [`system/${resource}.${need}`, `user/${resource}.${need}`, `patient/${resource}.${need}`];
  // The mapping operations touch no stored plan: a patient/ scope allows them without a patient claim.
  if (need === 'any' && grants.length) return { allowed: true };
  if (grants.some((g) => g.level === 'patient' && allows(g))) {
    if (caller.patientClaim) return { allowed: true, patient: caller.patientClaim };
    return { allowed: false, reason: 'a patient/ scope needs a patient claim in the token', needed };
  }
  return {
    allowed: false,
    reason:
      need === 'any'
        ? `the token has no ${resource} scope`
        : `the token's scopes do not allow this (${permissionName(need)} ${resource})`,
    needed,
  };
}

function permissionName(permission: Permission): string {
  return { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' }[permission];
}

/** The kinds of person a fhirUser claim may name (SMART App Launch 2.x, "fhirUser"). */
export const PERSON_TYPES = ['Patient', 'RelatedPerson', 'Practitioner', 'PractitionerRole'] as const;
export type PersonType = (typeof PERSON_TYPES)[number];

/**
 * The person a fhirUser claim names, as `Type/id`: a relative reference, or an absolute URL ending in one (SMART
 * gives an absolute URL). A claim of another type, or whose id breaks the FHIR id rule, is refused (`error`).
 */
export function personOf(claim: unknown): { person?: string; error?: string } {
  if (claim === undefined) return {};
  if (typeof claim !== 'string' || claim.length > 1000)
    return { error: 'its fhirUser claim is not a reference' };
  const relative = /^https?:\/\//.test(claim) ? claim.split('/').slice(-2).join('/') : claim;
  const parsed = parseLiteralReference(relative);
  if (!parsed || !(PERSON_TYPES as readonly string[]).includes(parsed.type)) {
    return { error: `its fhirUser claim must name a ${PERSON_TYPES.join(', ')} by a FHIR id` };
  }
  return { person: `${parsed.type}/${parsed.id}` };
}

export function personType(person: string | undefined): PersonType | undefined {
  const type = person?.split('/')[0];
  return (PERSON_TYPES as readonly string[]).includes(type ?? '') ? (type as PersonType) : undefined;
}

/**
 * The patient (Patient/<id>) the caller acts for only: a patient/ token's patient, or the Patient its user is,
 * whatever its scopes. Care plans, subscriptions and measure reports all apply this one rule.
 */
export function patientRestriction(caller: Caller | undefined): string | undefined {
  return caller?.patient ?? (personType(caller?.person) === 'Patient' ? caller?.person : undefined);
}

/**
 * A family member or friend (a RelatedPerson user) sees a patient's plans one by one: only those whose care team
 * they are on. What covers all of a patient's plans at once (subscriptions, measure reports) is not for them.
 */
export function seesPlansOneByOne(caller: Caller | undefined): boolean {
  return personType(caller?.person) === 'RelatedPerson';
}

/** Plain text for Provenance and history: who made a change. Never a token. */
export function callerDisplay(caller: Caller | undefined): string {
  if (!caller || caller.kind === 'anonymous') return ANONYMOUS_DISPLAY;
  const client = caller.clientId ?? 'unknown client';
  const user =
    caller.fhirUser ?? (caller.subject && caller.subject !== caller.clientId ? caller.subject : '');
  return clean(user ? `client ${client} (user ${user})` : `client ${client}`);
}

/** Plain text naming the client alone (the person is named by their own Provenance agent). */
export function clientDisplay(caller: Caller | undefined): string {
  if (!caller || caller.kind === 'anonymous') return ANONYMOUS_DISPLAY;
  return clean(`client ${caller.clientId ?? 'unknown client'}`);
}

/**
 * Idempotency keys are scoped to the caller: the client, and for a patient-restricted request also its patient, so
 * two patients using one app can never replay each other's plans.
 */
export function idempotencyScope(caller: Caller | undefined): string {
  if (!caller || caller.kind === 'anonymous') return '';
  return `${caller.clientId ?? ''}${caller.patient ? `|${caller.patient}` : ''}`;
}

/** Text from a token made safe for a FHIR string and a log line: no control characters, bounded. */
export function clean(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 200);
}

/** Plan subjects come as Patient/<id>, an absolute URL or a versioned reference: compare them as Patient/<id>. */
export function subjectPatient(reference: string | undefined): string | undefined {
  if (!reference) return undefined;
  const match = /(?:^|\/)(Patient\/[A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(reference);
  return match?.[1];
}
