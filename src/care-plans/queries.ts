// Reading plans: one plan, a patient's plans (keyset cursor paging), the change feed, a plan's history.
import type { CarePlan, Provenance } from 'fhir/r4.js';
import { personType } from '../auth/caller.js';
import { EXTENSION } from '../fhir/mapping/codes.js';
import { planRevision } from '../fhir/mapping/provenance.js';
import { DomainError } from '../model/errors.js';
import {
  hiddenPlan,
  maySee,
  type Participant,
  requireOwnFeed,
  requireOwnSearch,
  restrictedPatient,
} from './access.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { UseCaseDeps } from './deps.js';
import { participantOf } from './participants.js';
import type { ChangeItem, HistoryItem, Page, PlanContext, SearchFilters, StoredPlan } from './types.js';

/** A plan by id; another patient's plan is absent for a patient-restricted caller. */
export async function readPlan(deps: UseCaseDeps, id: string, context: PlanContext): Promise<StoredPlan> {
  return (await readPlanAs(deps, id, context)).stored;
}

/** A plan by id and the caller's role on it; a plan the caller has no role on is absent (not found). */
export async function readPlanAs(
  deps: UseCaseDeps,
  id: string,
  context: PlanContext,
): Promise<{ stored: StoredPlan; participant: Participant }> {
  const stored = await deps.repository.read(id, context, (carePlan) => {
    if (!maySee(context, carePlan)) throw hiddenPlan();
  });
  return { stored, participant: await participantOf(deps, stored.plan, context) };
}

export async function searchPlans(
  deps: UseCaseDeps,
  filters: SearchFilters,
  limit: number,
  cursor: string | undefined,
  context: PlanContext,
): Promise<Page<StoredPlan>> {
  requireOwnSearch(context, filters.patient);
  const { carePlans, cursorAfter, hasMore } = await page(deps, filters, limit, cursor, context, 0);
  const all = await deps.repository.readMany(carePlans, context);
  // A family member sees only the plans whose care team they are on.
  const seen = await Promise.all(
    all.map((s) => participantOf(deps, s.plan, context).then(() => true, onlyHidden)),
  );
  const items = all.filter((_, i) => seen[i]);
  return { items, next: hasMore ? (cursorAfter as string) : null };
}

/** Changes oldest first, resumable from a cursor; an empty page means the consumer is up to date. */
export async function planChanges(
  deps: UseCaseDeps,
  since: string | undefined,
  limit: number,
  context: PlanContext,
  patient?: string,
): Promise<Page<ChangeItem>> {
  requireOwnFeed(context, patient);
  if (personType(context.caller?.person) === 'RelatedPerson') {
    // The feed lists every plan of the patient; a family member follows the plans they are on one by one.
    throw new DomainError(
      'not-allowed',
      'the change feed is not open to family members; read the plans you are on',
      {
        denied: true,
      },
    );
  }
  const filter = restrictedPatient(context) ?? patient;
  const { carePlans, cursorAfter } = await page(
    deps,
    { patient: filter },
    limit,
    since,
    context,
    deps.settleMs,
  );
  return {
    items: carePlans.map((c) => ({
      id: c.id as string,
      version: c.meta?.versionId as string,
      lastUpdated: c.meta?.lastUpdated as string,
      status: c.status,
      ...(c.subject?.reference ? { patient: c.subject.reference } : {}),
    })),
    next: cursorAfter ?? since ?? encodeCursor({ t: '', seen: [] }),
  };
}

function onlyHidden(error: unknown): false {
  if (error instanceof DomainError && error.kind === 'not-found') return false;
  throw error;
}

/**
 * One page of CarePlans ordered by lastUpdated, from a keyset cursor (the last time seen and the ids already
 * returned at that time), so paging works on servers that give no paging links.
 */
async function page(
  deps: UseCaseDeps,
  filters: SearchFilters,
  limit: number,
  cursor: string | undefined,
  context: PlanContext,
  settleMs: number,
): Promise<{ carePlans: CarePlan[]; cursorAfter?: string; hasMore: boolean }> {
  const position = cursor === undefined ? undefined : decodeCursor(cursor);
  if (cursor !== undefined && !position) {
    throw new DomainError('invalid-request', 'the cursor is not one this service gave out', {
      errors: [{ pointer: '/cursor', detail: 'unknown cursor', in: 'query' }],
    });
  }
  const seen = new Set(position?.seen ?? []);
  const params: Record<string, string> = { _sort: '_lastUpdated', _count: String(limit + seen.size + 1) };
  // Later pages start at the cursor, which is never before updatedSince (the first page applied it).
  const since = position?.t || filters.updatedSince;
  if (since) params._lastUpdated = `ge${since}`;
  if (filters.patient) params.subject = filters.patient;
  if (filters.status) params.status = filters.status;
  const bundle = await deps.repository.search('CarePlan', params, context);
  // Writes that are still settling may yet commit with an earlier time: the feed waits until they cannot.
  const settledBefore = settleMs > 0 ? new Date(Date.now() - settleMs).toISOString() : undefined;
  const all = (bundle.entry ?? [])
    .map((e) => e.resource as CarePlan)
    .filter((c) => c?.resourceType === 'CarePlan' && !!c.meta?.lastUpdated)
    // Defence in depth: whatever the server's search did, a restricted caller sees its patient's plans only.
    .filter((c) => maySee(context, c))
    .filter((c) => !(c.meta?.lastUpdated === position?.t && seen.has(c.id as string)))
    .filter((c) => !settledBefore || (c.meta?.lastUpdated as string) <= settledBefore);
  const carePlans = all.slice(0, limit);
  if (carePlans.length === 0) return { carePlans, hasMore: false };
  const last = carePlans[carePlans.length - 1].meta?.lastUpdated as string;
  const tied = carePlans.filter((c) => c.meta?.lastUpdated === last).map((c) => c.id as string);
  const cursorAfter = encodeCursor({ t: last, seen: last === position?.t ? [...seen, ...tied] : tied });
  // Servers cap page sizes (HAPI: 50): a next link then also means there is more.
  const serverHasMore = (bundle.link ?? []).some((link) => link.relation === 'next');
  return { carePlans, cursorAfter, hasMore: all.length > limit || serverHasMore };
}

/**
 * The versions of a plan, newest first, each with who made it (changedBy) from the Provenance written in the same
 * transaction (matched by the plan-revision both carry). A patient-restricted caller sees only the versions
 * of its patient's plan; another patient's plan is absent (404).
 */
export async function planHistory(
  deps: UseCaseDeps,
  id: string,
  context: PlanContext,
): Promise<HistoryItem[]> {
  // A person sees the history of the plans they have a role on only.
  if (context.caller?.person) await readPlanAs(deps, id, context);
  const [bundle, provenance] = await Promise.all([
    deps.repository.history(id, context),
    deps.repository.search('Provenance', { target: `CarePlan/${id}`, _count: '1000' }, context),
  ]);
  const changedBy = new Map<string, Pick<HistoryItem, 'changedBy' | 'changedByReference' | 'via'>>();
  for (const entry of provenance.entry ?? []) {
    const resource = entry.resource as Provenance | undefined;
    if (resource?.resourceType !== 'Provenance') continue;
    const revision = resource.extension?.find((e) => e.url === EXTENSION.planRevision)?.valueString;
    const who = resource.agent?.[0]?.who;
    const display = who?.display ?? who?.reference ?? who?.identifier?.value;
    const via = resource.agent?.[1]?.who?.display;
    if (revision && display)
      changedBy.set(revision, {
        changedBy: display,
        ...(who?.reference ? { changedByReference: who.reference } : {}),
        ...(via ? { via } : {}),
      });
  }
  const versions = (bundle.entry ?? [])
    .map((e) => e.resource as CarePlan | undefined)
    .filter((c): c is CarePlan => c?.resourceType === 'CarePlan')
    .filter((c) => maySee(context, c));
  if (restrictedPatient(context) && versions.length === 0) throw hiddenPlan();
  return versions
    .map((c) => {
      const by = changedBy.get(planRevision(c) ?? '');
      return {
        version: c.meta?.versionId as string,
        ...(c.meta?.lastUpdated ? { lastUpdated: c.meta.lastUpdated } : {}),
        status: c.status,
        ...(by ?? {}),
      };
    })
    .sort((a, b) => ((a.lastUpdated ?? '') < (b.lastUpdated ?? '') ? 1 : -1));
}
