// Events come from the CarePlans' version history on the FHIR server, never from process memory: every version is
// one event, in one order for everyone (lastUpdated, then plan id, then its place in the plan's history), so that
// any instance, after any restart, finds the same event n from the same position. Versions younger than the
// change feed's settle window are held back, since a transaction may commit after a later one with an earlier
// timestamp (README, "Change feed").
import type { CarePlan } from 'fhir/r4.js';
import { subjectPatient } from '../auth/caller.js';
import { type CallContext, type FhirGateway, FhirServerError } from '../fhir/client/gateway.js';
import type { EventType, Position } from './subscription-resource.js';

export interface PlanEvent {
  type: EventType;
  plan: { id: string; version: string; status: string; patient?: string; lastUpdated: string };
  /** The order key: lastUpdated, plan id, index in the plan's history (oldest 0). */
  index: number;
}

export interface EventFilter {
  events: readonly EventType[];
  patient?: string;
}

export interface EventQuery {
  /** Only versions whose lastUpdated is at or before this are settled (the change feed's settle window). */
  settledBefore: string;
  limit: number;
  /** Versions asked for per page of a plan's history (the server may cap it: HAPI at 50). */
  pageSize: number;
}

/** CarePlan statuses that end a plan (http://hl7.org/fhir/R4/valueset-request-status.html). */
const ENDED = new Set(['revoked', 'entered-in-error', 'completed']);
/** CarePlans read per search page while looking for plans changed since a position. */
const SEARCH_PAGE = 50;

const key = (e: PlanEvent) => `${e.plan.id}/${e.plan.version}`;

function compare(a: PlanEvent, b: PlanEvent): number {
  if (a.plan.lastUpdated !== b.plan.lastUpdated) return a.plan.lastUpdated < b.plan.lastUpdated ? -1 : 1;
  if (a.plan.id !== b.plan.id) return a.plan.id < b.plan.id ? -1 : 1;
  return a.index - b.index;
}

export function isAfter(event: PlanEvent, position: Position): boolean {
  const t = event.plan.lastUpdated;
  return t > position.t || (t === position.t && !position.seen.includes(key(event)));
}

/** The position right after an event (given the position before it). */
export function positionAfter(event: PlanEvent, before: Position): Position {
  const t = event.plan.lastUpdated;
  return { t, seen: t === before.t ? [...before.seen, key(event)] : [key(event)] };
}

/**
 * Every version of one plan, from every page of its history (`next` links, within the base URL only), each once
 * (a version written while paging shifts a server's offsets and repeats an entry).
 */
async function planVersions(
  gateway: FhirGateway,
  id: string,
  pageSize: number,
  context: CallContext,
): Promise<CarePlan[]> {
  const first = await gateway.fullHistory('CarePlan', id, pageSize, context);
  const entries = [...(first.entry ?? [])];
  for await (const page of gateway.nextPages(first, context)) entries.push(...(page.entry ?? []));
  const byVersion = new Map<string, CarePlan>();
  for (const { resource } of entries) {
    const plan = resource as CarePlan | undefined;
    const version = plan?.meta?.versionId;
    if (plan?.resourceType === 'CarePlan' && plan.id && plan.meta?.lastUpdated && version)
      byVersion.set(version, plan);
  }
  // Fewer versions than the server counts, and no next link: numbering the events would skip the oldest.
  if (first.total !== undefined && entries.length < first.total) {
    throw new FhirServerError(
      'upstream',
      `the FHIR server gave ${entries.length} of the ${first.total} versions of CarePlan/${id} and no next-page link`,
    );
  }
  return [...byVersion.values()];
}

/** The events of one plan's versions (the whole history), oldest first; the oldest is its creation. */
function planEvents(plans: CarePlan[]): PlanEvent[] {
  const versions = plans.sort((a, b) =>
    (a.meta?.lastUpdated as string) < (b.meta?.lastUpdated as string) ? -1 : 1,
  );
  return versions.map((plan, index) => {
    const previous = versions[index - 1];
    const type: EventType =
      index === 0
        ? 'care-plan.created'
        : ENDED.has(plan.status) && !ENDED.has(previous.status)
          ? 'care-plan.ended'
          : 'care-plan.updated';
    const patient = subjectPatient(plan.subject?.reference);
    return {
      type,
      index,
      plan: {
        id: plan.id as string,
        version: plan.meta?.versionId as string,
        status: plan.status,
        ...(patient ? { patient } : {}),
        // One form (UTC, Z) for every server: HAPI writes +00:00, and positions are compared as text.
        lastUpdated: new Date(plan.meta?.lastUpdated as string).toISOString(),
      },
    };
  });
}

/** Ids of the CarePlans whose current version is at or after `since`, oldest change first. */
async function plansChangedSince(
  gateway: FhirGateway,
  since: string,
  patient: string | undefined,
  context: CallContext,
): Promise<string[]> {
  const ids: string[] = [];
  const seen = new Set<string>();
  let from = since;
  for (;;) {
    const params: Record<string, string> = {
      _sort: '_lastUpdated',
      _count: String(SEARCH_PAGE),
      _elements: 'id,meta',
    };
    if (from) params._lastUpdated = `ge${from}`;
    if (patient) params.subject = patient;
    const bundle = await gateway.search('CarePlan', params, context);
    const plans = (bundle.entry ?? [])
      .map((e) => e.resource as CarePlan | undefined)
      .filter((c): c is CarePlan => c?.resourceType === 'CarePlan' && !!c.id && !!c.meta?.lastUpdated);
    const fresh = plans.filter((c) => !seen.has(c.id as string));
    for (const plan of fresh) {
      seen.add(plan.id as string);
      ids.push(plan.id as string);
    }
    const more = plans.length >= SEARCH_PAGE || (bundle.link ?? []).some((l) => l.relation === 'next');
    // Next page: from the last change seen (ties are skipped by id); a page of only known plans ends the walk.
    if (!more || fresh.length === 0) return ids;
    from = plans[plans.length - 1].meta?.lastUpdated as string;
  }
}

/** The events after `position` whose versions are settled and match the filter, in order, at most `limit`. */
export async function eventsAfter(
  gateway: FhirGateway,
  position: Position,
  filter: EventFilter,
  { settledBefore, limit, pageSize }: EventQuery,
  context: CallContext = {},
): Promise<PlanEvent[]> {
  const ids = await plansChangedSince(gateway, position.t, filter.patient, context);
  const found: PlanEvent[] = [];
  for (const id of ids) {
    for (const event of planEvents(await planVersions(gateway, id, pageSize, context))) {
      if (event.plan.lastUpdated > settledBefore || !isAfter(event, position)) continue;
      if (!filter.events.includes(event.type)) continue;
      if (filter.patient && event.plan.patient !== filter.patient) continue;
      found.push(event);
    }
  }
  return found.sort(compare).slice(0, limit);
}
