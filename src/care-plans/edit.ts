// Changing a stored plan: read, change, write back in one transaction conditional on the version the caller read.
// With an Idempotency-Key the write carries a revision derived from the key, so a retry finds its own write.
import type { CarePlan, Resource } from 'fhir/r4.js';
import { FhirServerError } from '../fhir/client/gateway.js';
import { jsonEqual } from '../fhir/mapping/carry.js';
import { managedIdentifiers, planKeyOf } from '../fhir/mapping/plan-parts.js';
import { planRevision } from '../fhir/mapping/provenance.js';
import type { SharedCarePlan } from '../model/care-plan.js';
import { DomainError } from '../model/errors.js';
import { type Participant, requireAllowed, requireOwnPatient, type Write } from './access.js';
import { attributed } from './attribution.js';
import type { UseCaseDeps } from './deps.js';
import { editRevision } from './idempotency.js';
import { checkOwnership } from './ownership.js';
import { partReferences, withActivityIds } from './plan-ids.js';
import { readPlan, readPlanAs } from './queries.js';
import type { EditContext, EditResult, PlanContext, StoredPlan } from './types.js';

/**
 * Applies `change` to the current plan and writes the result, if `expected` names the current version (a list
 * matches when any member does).
 */
export async function applyEdit(
  deps: UseCaseDeps,
  id: string,
  expected: string[] | undefined,
  context: EditContext,
  change: (current: StoredPlan, participant: Participant) => SharedCarePlan,
  kind: EditKind = { write: 'replace' },
): Promise<EditResult> {
  // An additive contribution sent without If-Match applies to whatever version is current, and is applied again
  // to the new current version when someone else wrote in between.
  const unversioned = kind.additive === true && expected === undefined;
  for (let attempt = 1; ; attempt++) {
    const { stored: current, participant } = await readPlanAs(deps, id, context);
    requireAllowed(participant, kind.write);
    const revision = context.idempotency ? editRevision(id, context) : deps.newUuid();
    if (context.idempotency) {
      const replayed = await replayedEdit(deps, current, expected, revision, context);
      if (replayed) return { ...replayed, replayed: true };
    }
    if (!unversioned) requireVersion(current, expected);
    const next = attributed(
      participant,
      current.plan,
      change(current, participant),
      new Date().toISOString(),
    );
    checkOwnership(participant, current.plan, next);
    const actor = participant.person ? { actor: participant.person } : {};
    try {
      return { ...(await write(deps, current, next, { ...context, ...actor }, revision)), replayed: false };
    } catch (error) {
      const lost = error instanceof DomainError && error.kind === 'stale';
      if (!unversioned || !lost || attempt >= MAX_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
    }
  }
}

/** What an edit is, for the access table, and whether it only adds (so it may apply to any current version). */
export interface EditKind {
  write: Write;
  additive?: boolean;
}

/** Tries of an additive contribution that keeps meeting others' writes (then 412, as for a stale If-Match). */
const MAX_ATTEMPTS = 12;

/**
 * The plan, when an edit with this Idempotency-Key was written already (its revision names the key): the
 * latest version, or an earlier one when the caller's version is stale because others wrote after it. The same
 * key with another request is refused.
 */
async function replayedEdit(
  deps: UseCaseDeps,
  current: StoredPlan,
  expected: string[] | undefined,
  revision: string,
  context: EditContext,
): Promise<StoredPlan | undefined> {
  const key = `${revision.split('.')[0]}.`;
  let written = planRevision(current.resources[0] as CarePlan);
  if (!written?.startsWith(key)) {
    // The caller's version still current: nothing was written since the caller read, so neither was this edit.
    if (!expected || expected.includes(current.version)) return undefined;
    const history = await deps.repository.history(current.plan.id as string, context);
    written = (history.entry ?? [])
      .map((e) => planRevision(e.resource as CarePlan))
      .find((r) => r?.startsWith(key));
    if (!written) return undefined;
  }
  if (written !== revision) {
    throw new DomainError(
      'idempotency-key-reused',
      'this Idempotency-Key was already used with a different request on this plan',
    );
  }
  return current;
}

/** Writes `next` over `current` in one transaction conditional on its version (checked by the caller). */
async function write(
  deps: UseCaseDeps,
  current: StoredPlan,
  next: SharedCarePlan,
  context: PlanContext,
  revision: string,
): Promise<StoredPlan> {
  const { repository, mapping, newUuid } = deps;
  requireOwnPatient(context, next.patient?.reference, '/patient/reference');
  const id = current.plan.id as string;
  if (next.id !== undefined && next.id !== id) {
    throw new DomainError('unprocessable', `the body is plan "${next.id}", not "${id}"`, {
      errors: [{ pointer: '/id', detail: 'must be the id of the plan in the path' }],
    });
  }
  if (next.version !== undefined && next.version !== current.version) {
    throw stale(current.version, 'the version in the body is not the current version of the plan');
  }
  // Parts named by id must be parts of this plan: an update never takes over another plan's resources.
  const owned = partReferences(current.plan);
  const wanted = partReferences(next);
  const foreign = [...wanted].filter((ref) => !owned.has(ref));
  if (foreign.length) {
    throw new DomainError('unprocessable', 'the body names parts that do not belong to this plan', {
      errors: foreign.map((ref) => ({ pointer: '', detail: `${ref} is not part of plan ${id}` })),
    });
  }
  const { version: _v, lastUpdated: _l, ...plan } = { ...withActivityIds(next, newUuid), id };
  const carePlan = current.resources[0] as CarePlan;
  const bundle = mapping.toFhir(plan, {
    ifMatchVersion: current.version,
    revision,
    deleteReferences: [...owned].filter((ref) => !wanted.has(ref)),
    // A plan written before parts carried the plan's identifier gets one now; its old parts stay references.
    planKey: planKeyOf(carePlan) ?? newUuid(),
    storedIdentifiers: new Map(
      current.resources.map((r) => [`${r.resourceType}/${r.id}`, managedIdentifiers(r)]),
    ),
  });
  // Parts that did not change are not rewritten, so their own versions stay meaningful.
  const previous = new Map(current.resources.map((r) => [`${r.resourceType}/${r.id}`, r]));
  bundle.entry = bundle.entry?.filter((entry, index) => {
    if (index === 0 || entry.request?.method !== 'PUT' || !entry.resource) return true;
    const before = previous.get(entry.request.url);
    return !before || !jsonEqual(content(before), content(entry.resource));
  });
  const withProvenance = mapping.withProvenance(bundle, context, 'UPDATE');
  try {
    const response = await repository.transaction(withProvenance, context, false);
    return repository.planFromTransaction(bundle, response, current.resources);
  } catch (error) {
    // A stale version is refused as such (HAPI reports version conflicts as 409, others as 412).
    if (
      error instanceof FhirServerError &&
      (error.kind === 'precondition-failed' || error.kind === 'conflict')
    ) {
      const latest = await readPlan(deps, id, context);
      if (latest.version !== current.version) {
        throw stale(latest.version, 'the plan was changed by someone else; read it again');
      }
      // Not a stale version: another conflict the FHIR server reported (its OperationOutcome says which).
    }
    // The answer was lost or late, but the write may have committed: the revision it wrote tells.
    if (isAmbiguous(error)) {
      const landed = await readPlan(deps, id, context).catch(() => undefined);
      if (landed && planRevision(landed.resources[0] as CarePlan) === revision) return landed;
    }
    throw error;
  }
}

/** A failure after which the FHIR server may or may not have committed the transaction. */
function isAmbiguous(error: unknown): boolean {
  if (!(error instanceof FhirServerError)) return true;
  return error.kind === 'timeout' || error.kind === 'upstream' || error.kind === 'unavailable';
}

function stale(currentVersion: string, detail: string): DomainError {
  return new DomainError('stale', detail, { currentVersion });
}

/** `expected`: the versions the caller based the change on (a list matches when any member does). */
function requireVersion(current: StoredPlan, expected: string[] | undefined) {
  if (expected === undefined) {
    throw new DomainError('version-required', 'the change does not name the version it is based on');
  }
  if (!expected.includes(current.version)) {
    throw stale(current.version, 'the plan was changed since it was read (If-Match is stale)');
  }
}

/** A resource without what the server stamps on every write, to tell a real change from a no-op. */
function content(resource: Resource): unknown {
  const { meta, ...rest } = resource;
  const { versionId: _v, lastUpdated: _l, source, ...metaRest } = meta ?? {};
  const keptMeta = { ...metaRest, ...(source && !source.startsWith('#') ? { source } : {}) };
  return Object.keys(keptMeta).length ? { ...rest, meta: keptMeta } : rest;
}
