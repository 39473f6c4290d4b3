// Creating a plan: one transaction; with an Idempotency-Key, conditional on the key, so retries and concurrent
// requests with one key create one plan.
import type { CarePlan, Identifier } from 'fhir/r4.js';
import { idempotencyScope } from '../auth/caller.js';
import { FhirServerError } from '../fhir/client/gateway.js';
import { SYSTEM } from '../fhir/mapping/codes.js';
import type { SharedCarePlan } from '../model/care-plan.js';
import { DomainError } from '../model/errors.js';
import { requireOwnPatient } from './access.js';
import { creator, ownNewPlan } from './attribution.js';
import type { UseCaseDeps } from './deps.js';
import { canonicalJson, sha256 } from './idempotency.js';
import { withActivityIds, withoutStoredIds } from './plan-ids.js';
import { readPlan } from './queries.js';
import type { CreateContext, PlanContext, StoredPlan } from './types.js';

export async function createPlan(
  deps: UseCaseDeps,
  plan: SharedCarePlan,
  context: CreateContext,
): Promise<StoredPlan & { replayed: boolean }> {
  const { repository, mapping, newUuid } = deps;
  requireOwnPatient(context, plan.patient?.reference, '/patient/reference');
  // A person's new plan: attributed to them (a patient's own plan is theirs); family members create none.
  const participant = creator(plan, context);
  const sent = plan;
  if (participant.person) {
    plan = ownNewPlan(participant, plan, new Date().toISOString());
    context = { ...context, actor: participant.person };
  }
  const fresh = withActivityIds(withoutStoredIds(plan), newUuid);
  if (!context.idempotencyKey) {
    const bundle = mapping.toFhir(fresh, { revision: newUuid(), planKey: newUuid() });
    const transaction = mapping.withProvenance(bundle, context, 'CREATE');
    const response = await repository.transaction(transaction, context, false);
    return { ...repository.planFromTransaction(transaction, response, [], fresh), replayed: false };
  }
  const scope = context.caller ? idempotencyScope(context.caller) : (context.clientId ?? '');
  const keyHash = sha256(`${scope}\n${context.idempotencyKey}`);
  const requestHash = sha256(canonicalJson(sent));
  for (let attempt = 0; ; attempt++) {
    const existing = await findByIdempotencyKey(deps, keyHash, context);
    if (existing) return { ...(await replay(deps, existing, requestHash, context)), replayed: true };
    // Derived from the key, so that concurrent requests with one key write parts of one plan.
    const planKey = sha256(`plan\n${keyHash}`).slice(0, 32);
    const bundle = mapping.toFhir(fresh, {
      idempotency: { keyHash, requestHash },
      revision: keyHash,
      planKey,
    });
    try {
      const transaction = mapping.withProvenance(bundle, context, 'CREATE', `${keyHash}/provenance`);
      const response = await repository.transaction(transaction, context, true);
      const stored = repository.planFromTransaction(transaction, response, [], fresh);
      // 200 instead of 201: a concurrent request with the same key created the plan first.
      const createdNow = response.entry?.[0]?.response?.status?.startsWith('201') ?? true;
      if (!createdNow)
        return {
          ...(await replay(deps, stored.resources[0] as CarePlan, requestHash, context)),
          replayed: true,
        };
      return { ...stored, replayed: false };
    } catch (error) {
      // A server that makes concurrent conditional creates unique by a constraint answers 409 to the loser.
      if (error instanceof FhirServerError && error.kind === 'conflict' && attempt < 2) continue;
      throw error;
    }
  }
}

async function findByIdempotencyKey(
  deps: UseCaseDeps,
  keyHash: string,
  context: PlanContext,
): Promise<CarePlan | undefined> {
  const found = await deps.repository.search(
    'CarePlan',
    { identifier: `${SYSTEM.idempotencyKey}|${keyHash}` },
    context,
  );
  return found.entry?.find((e) => e.resource?.resourceType === 'CarePlan')?.resource as CarePlan | undefined;
}

async function replay(
  deps: UseCaseDeps,
  carePlan: CarePlan,
  requestHash: string,
  context: PlanContext,
): Promise<StoredPlan> {
  const original = carePlan.identifier?.find(
    (i: Identifier) => i.system === SYSTEM.idempotencyRequest,
  )?.value;
  if (original !== requestHash) {
    throw new DomainError(
      'idempotency-key-reused',
      'this Idempotency-Key was already used with a different request body',
    );
  }
  return readPlan(deps, carePlan.id as string, context);
}
