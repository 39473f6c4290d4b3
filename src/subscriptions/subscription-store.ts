// Subscriptions on the FHIR server: read, list, create, and version-checked writes of their delivery state (the
// lease included), so that two instances never both think they deliver one subscription.
import { createHash } from 'node:crypto';
import type { Bundle, Subscription } from 'fhir/r4.js';
import { type CallContext, type FhirGateway, FhirServerError } from '../fhir/client/gateway.js';
import {
  type DeliveryState,
  fromResource,
  TOPIC,
  toResource,
  type WebhookSubscription,
} from './subscription-resource.js';

/** A version-checked write lost: someone else wrote the subscription since it was read (or deleted it). */
export function isLostRace(error: unknown): boolean {
  return (
    error instanceof FhirServerError &&
    ['precondition-failed', 'conflict', 'not-found', 'gone'].includes(error.kind)
  );
}

export function messageId(subscriptionId: string, planId: string, version: string): string {
  return `msg_${createHash('sha256').update(`${subscriptionId}|${planId}|${version}`).digest('hex').slice(0, 32)}`;
}

export class SubscriptionStore {
  constructor(private readonly gateway: FhirGateway) {}

  /** Every one of this service's subscriptions on the FHIR server, from every page of the search, by id. */
  async list(context: CallContext, pageSize: number): Promise<WebhookSubscription[]> {
    const first: Bundle = await this.gateway.search('Subscription', { _count: String(pageSize) }, context);
    const entries = [...(first.entry ?? [])];
    for await (const page of this.gateway.nextPages(first, context)) entries.push(...(page.entry ?? []));
    const byId = new Map<string, WebhookSubscription>();
    for (const entry of entries) {
      const resource = entry.resource as Subscription | undefined;
      const sub =
        resource?.resourceType === 'Subscription' && resource.criteria === TOPIC
          ? fromResource(resource, undefined)
          : undefined;
      if (sub) byId.set(sub.id, sub); // a subscription created while paging may shift a later page: once each
    }
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** The subscription, or undefined when there is none with this id (or it is not one of this service's). */
  async read(id: string, context: CallContext): Promise<WebhookSubscription | undefined> {
    try {
      const { resource, version } = await this.gateway.read<Subscription>('Subscription', id, context);
      return fromResource(resource, version);
    } catch (error) {
      if (error instanceof FhirServerError && (error.kind === 'not-found' || error.kind === 'gone'))
        return undefined;
      throw error;
    }
  }

  async create(
    sub: Omit<WebhookSubscription, 'id' | 'version'>,
    context: CallContext,
  ): Promise<WebhookSubscription> {
    const { resource, version } = await this.gateway.create(toResource(sub), context);
    return fromResource(resource, version) as WebhookSubscription;
  }

  /** Writes a changed state (and status) only if the subscription is still at `sub.version`; throws on a lost race. */
  async save(
    sub: WebhookSubscription,
    change: { state?: DeliveryState; status?: WebhookSubscription['status'] },
    context: CallContext = {},
  ): Promise<WebhookSubscription> {
    const next = { ...sub, ...change };
    const { resource, version } = await this.gateway.update(
      { ...toResource(next), id: sub.id } as Subscription & { id: string },
      { ...context, ifMatchVersion: sub.version },
    );
    return fromResource(resource, version) as WebhookSubscription;
  }

  /** Read, change, write until the write is not raced (a worker may be writing its state at the same time). */
  async modify(
    id: string,
    change: (sub: WebhookSubscription) => { state?: DeliveryState; status?: WebhookSubscription['status'] },
    context: CallContext,
  ): Promise<WebhookSubscription | undefined> {
    for (let attempt = 0; ; attempt++) {
      const sub = await this.read(id, context);
      if (!sub) return undefined;
      try {
        return await this.save(sub, change(sub), context);
      } catch (error) {
        if (!isLostRace(error) || attempt >= 9) throw error;
      }
    }
  }

  async delete(id: string, context: CallContext): Promise<void> {
    await this.gateway.delete('Subscription', id, context);
  }
}
