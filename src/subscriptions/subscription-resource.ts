// A webhook subscription as an R4 Subscription resource on the FHIR server, shaped after the Subscriptions R5
// Backport IG (http://hl7.org/fhir/uv/subscriptions-backport/STU1.1/StructureDefinition-backport-subscription.html):
// the topic canonical in `criteria`, the patient filter in the backport-filter-criteria extension, a rest-hook
// channel with its endpoint and id-only payload. What the IG has no element for (the events chosen, the sealed
// secret, the delivery state and its lease) is in this project's extensions.
import type { Subscription } from 'fhir/r4.js';

export const TOPIC = 'https://shared-care-plans.org/fhir/SubscriptionTopic/care-plan-changes';
const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const OWN = 'https://shared-care-plans.org/fhir/StructureDefinition';
export const EXT = {
  filter: `${BACKPORT}/backport-filter-criteria`,
  payload: `${BACKPORT}/backport-payload-content`,
  timeout: `${BACKPORT}/backport-timeout`,
  events: `${OWN}/webhook-events`,
  secret: `${OWN}/webhook-secret`,
  state: `${OWN}/webhook-delivery-state`,
} as const;

export const EVENT_TYPES = ['care-plan.created', 'care-plan.updated', 'care-plan.ended'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** A position in the order of plan versions: after the versions at `t` named in `seen` (`id/version`). */
export interface Position {
  t: string;
  seen: string[];
}

export interface DeliveryState {
  /** Events are the plan versions after this position (the subscription's creation). */
  start: Position;
  /** The number of the last acknowledged event, and the position of its version. */
  delivered: number;
  position: Position;
  /** The event being retried: when it first failed, how often, and when it may be tried again. */
  retry?: { firstFailedAt: string; attempts: number; nextAt: string };
  lastError?: { message: string; at: string };
  lastDeliveredAt?: string;
  lease?: { owner: string; until: string };
}

export type SubscriptionStatus = 'active' | 'error' | 'off';

export interface WebhookSubscription {
  id: string;
  version: string;
  endpoint: string;
  events: EventType[];
  patient?: string;
  description?: string;
  status: SubscriptionStatus;
  sealedSecret: string;
  state: DeliveryState;
  timeoutMs: number;
}

const DEFAULT_REASON = 'Care plan changes for a syncing service';

export function toResource(sub: Omit<WebhookSubscription, 'id' | 'version'> & { id?: string }): Subscription {
  return {
    resourceType: 'Subscription',
    ...(sub.id ? { id: sub.id } : {}),
    meta: { profile: [`${BACKPORT}/backport-subscription`] },
    extension: [
      ...sub.events.map((type) => ({ url: EXT.events, valueCode: type })),
      { url: EXT.secret, valueString: sub.sealedSecret },
      { url: EXT.state, valueString: JSON.stringify(sub.state) },
    ],
    status: sub.status,
    reason: sub.description ?? DEFAULT_REASON,
    criteria: TOPIC,
    ...(sub.patient
      ? { _criteria: { extension: [{ url: EXT.filter, valueString: `CarePlan?subject=${sub.patient}` }] } }
      : {}),
    channel: {
      type: 'rest-hook',
      endpoint: sub.endpoint,
      payload: 'application/json',
      _payload: { extension: [{ url: EXT.payload, valueCode: 'id-only' }] },
      extension: [{ url: EXT.timeout, valueUnsignedInt: Math.ceil(sub.timeoutMs / 1000) }],
    },
  } as Subscription;
}

/** The webhook subscription a stored resource holds, or undefined when it is not one of this service's. */
export function fromResource(
  resource: Subscription,
  version: string | undefined,
): WebhookSubscription | undefined {
  if (resource.resourceType !== 'Subscription' || resource.criteria !== TOPIC || !resource.id)
    return undefined;
  const ext = resource.extension ?? [];
  const sealedSecret = ext.find((e) => e.url === EXT.secret)?.valueString;
  const stateText = ext.find((e) => e.url === EXT.state)?.valueString;
  if (!sealedSecret || !stateText || !resource.channel?.endpoint) return undefined;
  let state: DeliveryState;
  try {
    state = JSON.parse(stateText) as DeliveryState;
  } catch {
    return undefined;
  }
  const filter = (resource as { _criteria?: Subscription['_criteria'] })._criteria?.extension?.find(
    (e) => e.url === EXT.filter,
  )?.valueString;
  const timeout = resource.channel.extension?.find((e) => e.url === EXT.timeout)?.valueUnsignedInt;
  return {
    id: resource.id,
    version: version ?? resource.meta?.versionId ?? '',
    endpoint: resource.channel.endpoint,
    events: ext.filter((e) => e.url === EXT.events).map((e) => e.valueCode as EventType),
    ...(filter?.startsWith('CarePlan?subject=') ? { patient: filter.slice('CarePlan?subject='.length) } : {}),
    ...(resource.reason && resource.reason !== DEFAULT_REASON ? { description: resource.reason } : {}),
    status: resource.status === 'active' || resource.status === 'error' ? resource.status : 'off',
    sealedSecret,
    state,
    timeoutMs: (timeout ?? 10) * 1000,
  };
}
