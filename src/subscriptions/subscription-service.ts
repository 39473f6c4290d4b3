// The subscriptions API's use cases: create (the secret shown once), list, read, delete, status, replay. A patient
// token manages only subscriptions to its own patient's plans; any other is not found (no existence oracle).
import type { Caller } from '../auth/caller.js';
import { patientRestriction, seesPlansOneByOne, subjectPatient } from '../auth/caller.js';
import { requireSeesAllPlans } from '../care-plans/access.js';
import type { WebhookConfig } from '../config.js';
import type { FhirGateway } from '../fhir/client/gateway.js';
import { DomainError } from '../model/errors.js';
import type { DeliveryWorker } from './delivery-worker.js';
import { endpointProblem } from './endpoint.js';
import { eventsAfter, positionAfter } from './events.js';
import { encryptSecret, newSecret } from './secret.js';
import {
  EVENT_TYPES,
  type EventType,
  type Position,
  type WebhookSubscription,
} from './subscription-resource.js';
import { SubscriptionStore } from './subscription-store.js';

export interface SubscriptionContext {
  requestId?: string;
  caller?: Caller;
}

export interface NewSubscription {
  endpoint: string;
  events?: EventType[];
  patient?: string;
  description?: string;
}

export interface SubscriptionView {
  id: string;
  endpoint: string;
  events: EventType[];
  patient?: string;
  description?: string;
  status: WebhookSubscription['status'];
}

export interface SubscriptionStatusView {
  id: string;
  status: WebhookSubscription['status'];
  lastEventNumber: number;
  lastDelivered: number;
  backlog: number;
  lastDeliveredAt: string | null;
  lastError: { message: string; at: string } | null;
}

/** Events counted at most for a status answer or walked for a replay. */
const MAX_EVENTS_COUNTED = 100_000;

const view = (sub: WebhookSubscription): SubscriptionView => ({
  id: sub.id,
  endpoint: sub.endpoint,
  events: sub.events,
  ...(sub.patient ? { patient: sub.patient } : {}),
  ...(sub.description ? { description: sub.description } : {}),
  status: sub.status,
});

const notFound = (denied = false) =>
  new DomainError('not-found', 'no such subscription', denied ? { denied: true } : {});

export class SubscriptionService {
  private readonly store: SubscriptionStore;

  constructor(
    private readonly gateway: FhirGateway,
    private readonly config: WebhookConfig,
    private readonly worker: DeliveryWorker,
    private readonly settleMs: number,
  ) {
    this.store = new SubscriptionStore(gateway);
  }

  private key(): Buffer {
    if (!this.config.secretKey) {
      throw new DomainError(
        'webhooks-unavailable',
        'set WEBHOOK_SECRET_KEY to use webhook subscriptions with an external FHIR server',
      );
    }
    return this.config.secretKey;
  }

  async create(
    input: NewSubscription,
    context: SubscriptionContext,
  ): Promise<SubscriptionView & { secret: string }> {
    const key = this.key();
    const problem = endpointProblem(input.endpoint, this.config.allowedHosts);
    if (problem) {
      throw new DomainError('unprocessable', `the endpoint ${problem}`, {
        errors: [{ pointer: '/endpoint', detail: problem }],
      });
    }
    requireSeesAllPlans(context, 'a subscription');
    const restricted = patientRestriction(context.caller);
    const patient = input.patient ? subjectPatient(input.patient) : restricted;
    if (restricted && patient !== restricted) {
      throw new DomainError('not-allowed', "a patient token can only subscribe to its own patient's plans", {
        errors: [{ pointer: '/patient', detail: `must be ${restricted}` }],
        denied: true,
      });
    }
    const existing = await this.store.list(context, this.config.pageSize);
    if (existing.length >= this.config.maxSubscriptions) {
      throw new DomainError(
        'unprocessable',
        `at most ${this.config.maxSubscriptions} subscriptions (WEBHOOK_MAX_SUBSCRIPTIONS)`,
      );
    }
    const secret = newSecret();
    const start: Position = { t: new Date().toISOString(), seen: [] };
    const events = input.events?.length ? [...new Set(input.events)] : [...EVENT_TYPES];
    const created = await this.store.create(
      {
        endpoint: input.endpoint,
        events,
        ...(patient ? { patient } : {}),
        ...(input.description ? { description: input.description } : {}),
        status: 'active',
        sealedSecret: encryptSecret(secret, key),
        state: { start, delivered: 0, position: start },
        timeoutMs: this.config.timeoutMs,
      },
      context,
    );
    return { ...view(created), secret };
  }

  /** The subscription when the caller may see it; else a 404 (another patient's too). */
  private async visible(id: string, context: SubscriptionContext): Promise<WebhookSubscription> {
    const sub = await this.store.read(id, context);
    if (!sub) throw notFound();
    const restricted = patientRestriction(context.caller);
    if (seesPlansOneByOne(context.caller) || (restricted && sub.patient !== restricted)) throw notFound(true);
    return sub;
  }

  async list(context: SubscriptionContext): Promise<SubscriptionView[]> {
    const restricted = patientRestriction(context.caller);
    if (seesPlansOneByOne(context.caller)) return [];
    const all = await this.store.list(context, this.config.pageSize);
    return all.filter((sub) => !restricted || sub.patient === restricted).map(view);
  }

  async read(id: string, context: SubscriptionContext): Promise<SubscriptionView> {
    return view(await this.visible(id, context));
  }

  /**
   * Deletes it: turned off first, then this instance stops at once, and an instance delivering it elsewhere hands
   * its lease back at its next checkpoint (or the lease expires); only then is it deleted, so no attempt starts
   * after this answers.
   */
  async delete(id: string, context: SubscriptionContext): Promise<void> {
    await this.visible(id, context);
    await this.store.modify(id, (sub) => ({ status: 'off', state: sub.state }), context);
    await this.worker.halt(id);
    const until = Date.now() + this.config.leaseMs;
    for (;;) {
      const lease = (await this.store.read(id, context))?.state.lease;
      const held = lease && lease.owner !== this.worker.instance && Date.parse(lease.until) > Date.now();
      if (!held || Date.now() > until) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await this.store.delete(id, context);
  }

  /** The settled events after `position`, at most `limit`. */
  private events(sub: WebhookSubscription, position: Position, limit: number, context: SubscriptionContext) {
    const settledBefore = new Date(Date.now() - this.settleMs).toISOString();
    return eventsAfter(
      this.gateway,
      position,
      sub,
      { settledBefore, limit, pageSize: this.config.pageSize },
      context,
    );
  }

  async status(id: string, context: SubscriptionContext): Promise<SubscriptionStatusView> {
    const sub = await this.visible(id, context);
    const backlog = await this.events(sub, sub.state.position, MAX_EVENTS_COUNTED, context);
    return {
      id: sub.id,
      status: sub.status,
      lastEventNumber: sub.state.delivered + backlog.length,
      lastDelivered: sub.state.delivered,
      backlog: backlog.length,
      lastDeliveredAt: sub.state.lastDeliveredAt ?? null,
      lastError: sub.state.lastError ?? null,
    };
  }

  /** Delivers again from event `fromEvent` (turning an `error` or `off` subscription back on). */
  async replay(id: string, fromEvent: number, context: SubscriptionContext): Promise<SubscriptionStatusView> {
    const sub = await this.visible(id, context);
    const events = await this.events(sub, sub.state.start, Math.min(fromEvent, MAX_EVENTS_COUNTED), context);
    if (fromEvent > events.length + 1) {
      throw new DomainError(
        'unprocessable',
        `there is no event ${fromEvent} yet (the last is ${events.length})`,
        {
          errors: [{ pointer: '/fromEvent', detail: `must be at most ${events.length + 1}` }],
        },
      );
    }
    // The position after event fromEvent - 1: events before it count as delivered.
    let position = sub.state.start;
    for (const event of events.slice(0, fromEvent - 1)) position = positionAfter(event, position);
    await this.worker.halt(id);
    await this.store.modify(
      id,
      (current) => ({
        status: 'active',
        state: { ...current.state, delivered: fromEvent - 1, position, retry: undefined },
      }),
      context,
    );
    return this.status(id, context);
  }
}
