// A webhook receiver on loopback playing the subscriber (no package plays that party). Every delivery's signature
// is verified with the `standardwebhooks` package, never with the service's own code.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Delivery {
  webhookId: string;
  verified: boolean;
  /** What the receiver answered (0: it hung up without answering). */
  answered: number;
  // biome-ignore lint/suspicious/noExplicitAny: the delivery body is checked field by field
  body: any;
  at: number;
}

/**
 * How to answer the n-th request (1-based): a status, or `hang` (never answer), with optional headers, after
 * `delayMs` (a slow receiver).
 */
export type Behaviour = (
  n: number,
) => { status: number; headers?: Record<string, string>; delayMs?: number } | 'hang';

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  secret?: string;
  behaviour: Behaviour;
  /** Resolves when `predicate` holds for the deliveries (polled), or rejects after `timeoutMs`. */
  waitFor(predicate: (deliveries: Delivery[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(behaviour: Behaviour = () => ({ status: 204 })): Promise<Receiver> {
  const hung = new Set<import('node:http').ServerResponse>();
  let count = 0;
  const receiver: Receiver = {
    url: '',
    deliveries: [],
    behaviour,
    async waitFor(predicate, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      while (!predicate(receiver.deliveries)) {
        if (Date.now() > until) throw new Error(`receiver: condition not met after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async close() {
      for (const response of hung) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const answer = receiver.behaviour(++count);
      receiver.deliveries.push({
        webhookId: String(request.headers['webhook-id']),
        verified: verify(receiver.secret, text, request.headers),
        answered: answer === 'hang' ? 0 : answer.status,
        body: parsed(text),
        at: Date.now(),
      });
      if (answer === 'hang') {
        hung.add(response);
        return;
      }
      const reply = () => {
        if (!response.destroyed) response.writeHead(answer.status, answer.headers).end();
      };
      if (answer.delayMs) setTimeout(reply, answer.delayMs);
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return receiver;
}

/** The body as JSON, or as text when it is none (e.g. an unsigned POST from someone else): counted, not a crash. */
function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function verify(secret: string | undefined, body: string, headers: IncomingHttpHeaders): boolean {
  if (!secret) return false;
  try {
    new Webhook(secret).verify(body, headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
}

/**
 * The delivery log's figures, from the deliveries the receiver acknowledged and those before them: every event
 * number must be acknowledged, in order, without gaps; an event seen again must follow a failed attempt (or a
 * change of instance, given as `restarts`).
 */
export function deliveryFigures(deliveries: Delivery[]) {
  const acknowledged = deliveries.filter((d) => d.answered >= 200 && d.answered < 300);
  const numbers = acknowledged.map((d) => d.body.data.eventNumber as number);
  let orderViolations = 0;
  let duplicates = 0;
  const seen = new Set<number>();
  let highest = 0;
  for (const n of numbers) {
    if (seen.has(n)) duplicates++;
    else if (n !== highest + 1) orderViolations++;
    seen.add(n);
    highest = Math.max(highest, n);
  }
  let gaps = 0;
  for (let n = 1; n <= highest; n++) if (!seen.has(n)) gaps++;
  return {
    acknowledged: acknowledged.length,
    highest,
    distinct: seen.size,
    duplicates,
    gaps,
    orderViolations,
  };
}
