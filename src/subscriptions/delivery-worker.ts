// The delivery worker: runs in the service process (started and stopped with the app), never inside a request.
// Each subscription is delivered by one instance at a time: the one holding its lease, taken and renewed by
// version-checked updates of the Subscription on the FHIR server, with an expiry, so that another instance takes
// over when the holder dies. Event n+1 is sent only after n was acknowledged and that was recorded.
import { randomUUID } from 'node:crypto';
import type { WebhookConfig } from '../config.js';
import type { FhirGateway } from '../fhir/client/gateway.js';
import { attemptDelivery } from './delivery.js';
import { eventsAfter, type PlanEvent, positionAfter } from './events.js';
import { decryptSecret } from './secret.js';
import type { DeliveryState, Position, WebhookSubscription } from './subscription-resource.js';
import { isLostRace, messageId, SubscriptionStore } from './subscription-store.js';

/** The part of a pino logger the worker uses (the use case knows no HTTP framework). */
export interface WarningLogger {
  warn(details: object, message: string): void;
}

export interface WorkerOptions {
  config: WebhookConfig;
  settleMs: number;
  /** Where delivery problems are reported (the app's pino logger). */
  logger: WarningLogger;
}

/** Events fetched at once into a subscription's queue. */
const QUEUE_FILL = 250;

export function deliveryBody(sub: { id: string }, event: PlanEvent, eventNumber: number): string {
  return JSON.stringify({
    type: event.type,
    timestamp: event.plan.lastUpdated,
    data: { subscription: sub.id, eventNumber, plan: event.plan },
  });
}

/** Exponential backoff with jitter (half to all of the step), from retryMinMs up to retryMaxMs. */
export function backoffMs(config: WebhookConfig, attempts: number, retryAfterMs?: number): number {
  const step = Math.min(config.retryMaxMs, config.retryMinMs * 2 ** Math.min(30, Math.max(0, attempts - 1)));
  const jittered = step / 2 + (Math.random() * step) / 2;
  return retryAfterMs === undefined
    ? jittered
    : Math.max(jittered, Math.min(retryAfterMs, config.retryMaxMs));
}

const samePosition = (a: Position, b: Position) => a.t === b.t && a.seen.join('\n') === b.seen.join('\n');

export class DeliveryWorker {
  readonly instance = randomUUID();
  private readonly store: SubscriptionStore;
  private readonly running = new Map<string, { abort: AbortController; done: Promise<void> }>();
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private wake?: () => void;

  constructor(
    private readonly gateway: FhirGateway,
    private readonly options: WorkerOptions,
  ) {
    this.store = new SubscriptionStore(gateway);
  }

  start(): void {
    if (!this.options.config.secretKey) return;
    this.stopped = false;
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    for (const task of this.running.values()) task.abort.abort();
    await Promise.all([...this.running.values()].map((task) => task.done));
  }

  /** Stops this instance's delivery of a subscription at once (it is being deleted or replayed). */
  async halt(id: string): Promise<void> {
    const task = this.running.get(id);
    if (!task) return;
    task.abort.abort();
    await task.done;
  }

  /** Looks for subscriptions to deliver: those without a live lease. */
  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const subscriptions = await this.store.list({}, this.options.config.pageSize);
      const now = Date.now();
      for (const sub of subscriptions) {
        if (this.stopped || sub.status !== 'active' || this.running.has(sub.id)) continue;
        const lease = sub.state.lease;
        if (lease && lease.owner !== this.instance && Date.parse(lease.until) > now) continue;
        const abort = new AbortController();
        const done = this.deliver(sub, abort.signal)
          .catch((error) =>
            this.options.logger.warn({ err: error, subscription: sub.id }, 'webhook delivery stopped'),
          )
          .finally(() => this.running.delete(sub.id));
        this.running.set(sub.id, { abort, done });
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, 'webhook subscriptions could not be listed');
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.options.config.pollMs);
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done);
    });
  }

  private leased(state: DeliveryState): DeliveryState {
    return {
      ...state,
      lease: {
        owner: this.instance,
        until: new Date(Date.now() + this.options.config.leaseMs).toISOString(),
      },
    };
  }

  /** Delivers one subscription while this instance holds its lease. */
  private async deliver(found: WebhookSubscription, signal: AbortSignal): Promise<void> {
    const { config } = this.options;
    let sub: WebhookSubscription;
    try {
      sub = await this.store.save(found, { state: this.leased(found.state) });
    } catch (error) {
      if (isLostRace(error)) return; // another instance took it first
      throw error;
    }
    const secret = decryptSecret(sub.sealedSecret, config.secretKey as Buffer);
    if (!secret) {
      await this.store.save(sub, {
        status: 'error',
        state: {
          ...sub.state,
          lease: undefined,
          lastError: {
            message: 'the secret cannot be read with WEBHOOK_SECRET_KEY',
            at: new Date().toISOString(),
          },
        },
      });
      return;
    }
    let queue: PlanEvent[] = [];
    let queuedAfter: Position | undefined;
    // Acknowledgements are recorded (checkpointed) at most every pollMs, and always before idling, on a failure
    // and on stop: a crash in between sends those events again, which a receiver may see only after a failure.
    let dirty = false;
    let savedAt = Date.now();
    let mustRead = true;
    const checkpoint = async (change: { lease?: 'release'; status?: WebhookSubscription['status'] } = {}) => {
      const state = change.lease === 'release' ? { ...sub.state, lease: undefined } : this.leased(sub.state);
      try {
        sub = await this.store.save(sub, { state, ...(change.status ? { status: change.status } : {}) });
      } catch (error) {
        if (!isLostRace(error)) throw error;
        mustRead = true; // deleted, replayed, or the lease taken: the next read tells
      }
      dirty = false;
      savedAt = Date.now();
    };
    while (!signal.aborted && !this.stopped) {
      if (mustRead) {
        const fresh = await this.store.read(sub.id, {});
        const lease = fresh?.state.lease;
        if (!fresh || !lease || lease.owner !== this.instance) return;
        sub = fresh;
        mustRead = false;
        if (fresh.status !== 'active') {
          // Turned off (DELETE waits for this): hand the lease back.
          await checkpoint({ lease: 'release' });
          return;
        }
      }
      const now = Date.now();
      if (Date.parse(sub.state.lease?.until ?? '') - now < config.leaseMs / 2) {
        await checkpoint();
        continue;
      }
      const nextAt = sub.state.retry ? Date.parse(sub.state.retry.nextAt) : 0;
      if (nextAt > now) {
        await this.sleep(Math.min(nextAt - now, config.leaseMs / 4), signal);
        mustRead = true;
        continue;
      }
      if (!queuedAfter || !samePosition(queuedAfter, sub.state.position)) queue = [];
      if (queue.length === 0) {
        const settledBefore = new Date(Date.now() - this.options.settleMs).toISOString();
        queue = await eventsAfter(this.gateway, sub.state.position, sub, {
          settledBefore,
          limit: QUEUE_FILL,
          pageSize: config.pageSize,
        });
        queuedAfter = sub.state.position;
        if (queue.length === 0) {
          if (dirty) await checkpoint();
          await this.sleep(config.pollMs, signal);
          mustRead = true;
          continue;
        }
      }
      const event = queue[0];
      const eventNumber = sub.state.delivered + 1;
      const result = await attemptDelivery({
        endpoint: sub.endpoint,
        allowedHosts: config.allowedHosts,
        secret,
        messageId: messageId(sub.id, event.plan.id, event.plan.version),
        body: deliveryBody(sub, event, eventNumber),
        timeoutMs: config.timeoutMs,
        signal,
      });
      const at = new Date().toISOString();
      if (result.kind === 'acknowledged') {
        const position = positionAfter(event, sub.state.position);
        sub = {
          ...sub,
          state: { ...sub.state, delivered: eventNumber, position, retry: undefined, lastDeliveredAt: at },
        };
        queue.shift();
        queuedAfter = position;
        dirty = true;
        if (Date.now() - savedAt >= config.pollMs) await checkpoint();
      } else if (result.kind === 'gone') {
        sub = {
          ...sub,
          state: {
            ...sub.state,
            retry: undefined,
            lastError: { message: 'the receiver answered 410 Gone', at },
          },
        };
        await checkpoint({ lease: 'release', status: 'off' });
        return;
      } else {
        if (signal.aborted) break;
        const firstFailedAt = sub.state.retry?.firstFailedAt ?? at;
        const attempts = (sub.state.retry?.attempts ?? 0) + 1;
        const expired = Date.now() - Date.parse(firstFailedAt) >= config.retryForMs;
        const nextAt = new Date(Date.now() + backoffMs(config, attempts, result.retryAfterMs)).toISOString();
        sub = {
          ...sub,
          state: {
            ...sub.state,
            retry: expired ? undefined : { firstFailedAt, attempts, nextAt },
            lastError: { message: result.error, at },
          },
        };
        if (expired) {
          await checkpoint({ lease: 'release', status: 'error' });
          return;
        }
        await checkpoint();
      }
    }
    // Stopped (close, delete, replay): record what was acknowledged, and hand the lease back on close so that
    // another instance need not wait for its expiry.
    if (!mustRead && (dirty || this.stopped))
      await checkpoint(this.stopped ? { lease: 'release' } : {}).catch(() => undefined);
  }
}
