// Reading plans: one plan, a patient's plans (keyset cursor paging), the change feed, a plan's history.
import type { CarePlan, Provenance } from 'fhir/r4.js';
import { EXTENSION } from '../fhir/mapping/codes.js';
import { planRevision } from '../fhir/mapping/provenance.js';
import { DomainError } from '../model/errors.js';
import { hiddenPlan, maySee, requireOwnFeed, requireOwnSearch, restrictedPatient } from './access.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { UseCaseDeps } from './deps.js';
import type { ChangeItem, HistoryItem, Page, PlanContext, SearchFilters, StoredPlan } from './types.js';

/** A plan by id; another patient's plan is absent for a patient-restricted caller. */
export function readPlan(deps: UseCaseDeps, id: string, context: PlanContext): Promise<StoredPlan> {
  return deps.repository.read(id, context, (carePlan) => {
    if (!maySee(context, carePlan)) throw hiddenPlan();
  });
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
  const items = await deps.repository.readMany(carePlans, context);
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
  const [bundle, provenance] = await Promise.all([
    deps.repository.history(id, context),
    deps.repository.search('Provenance', { target: `CarePlan/${id}`, _count: '1000' }, context),
  ]);
  const changedBy = new Map<string, string>();
  for (const entry of provenance.entry ?? []) {
    const resource = entry.resource as Provenance | undefined;
    if (resource?.resourceType !== 'Provenance') continue;
    const revision = resource.extension?.find((e) => e.url === EXTENSION.planRevision)?.valueString;
    const who = resource.agent?.[0]?.who;
    const display = who?.display ?? who?.reference ?? who?.identifier?.value;
    if (revision && display) changedBy.set(revision, display);
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
        ...(by ? { changedBy: by } : {}),
      };
    })
    .sort((a, b) => ((a.lastUpdated ?? '') < (b.lastUpdated ?? '') ? 1 : -1));
}
