// One delivery attempt: POST <endpoint> with the Standard Webhooks headers, to the address checked after DNS
// resolution, no redirects followed, at most MAX_ANSWER_BYTES of the answer read, within the timeout.
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { EndpointRefused, resolveEndpoint } from './endpoint.js';
import { signature } from './secret.js';

/** What is read of a receiver's answer at most: enough for an error message, never a flood. */
export const MAX_ANSWER_BYTES = 4096;

export type AttemptResult =
  | { kind: 'acknowledged'; status: number }
  | { kind: 'gone' }
  | { kind: 'failed'; error: string; retryAfterMs?: number };

export interface Attempt {
  endpoint: string;
  allowedHosts: readonly string[];
  secret: string;
  messageId: string;
  body: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

export async function attemptDelivery(attempt: Attempt): Promise<AttemptResult> {
  const url = new URL(attempt.endpoint);
  let target: { address: string; family: 4 | 6 };
  try {
    target = await resolveEndpoint(url, attempt.allowedHosts);
  } catch (error) {
    if (error instanceof EndpointRefused) return { kind: 'failed', error: error.message };
    throw error;
  }
  const timestamp = Math.floor(Date.now() / 1000);
  // The connection goes to the checked address; TLS still checks the certificate against the host name.
  const fixedLookup: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all)
      callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  };
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    const finish = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      attempt.signal?.removeEventListener('abort', onAbort);
      request.destroy();
      resolve(result);
    };
    const request = transport.request(
      url,
      {
        method: 'POST',
        lookup: fixedLookup,
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(attempt.body),
          'user-agent': 'shared-care-plans-webhooks',
          'webhook-id': attempt.messageId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signature(attempt.secret, attempt.messageId, timestamp, attempt.body),
        },
      },
      (response) => {
        const status = response.statusCode ?? 0;
        let read = 0;
        const chunks: Buffer[] = [];
        const done = () => {
          if (status >= 200 && status < 300) return finish({ kind: 'acknowledged', status });
          if (status === 410) return finish({ kind: 'gone' });
          const text = Buffer.concat(chunks)
            .toString('utf8')
            .replace(/[^\x20-\x7e]+/g, ' ')
            .slice(0, 200);
          finish({
            kind: 'failed',
            error: `the receiver answered ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}${text ? `: ${text}` : ''}`,
            retryAfterMs: retryAfterMs(response.headers['retry-after']),
          });
        };
        response.on('data', (chunk: Buffer) => {
          if (read < MAX_ANSWER_BYTES) chunks.push(chunk.subarray(0, MAX_ANSWER_BYTES - read));
          read += chunk.length;
          if (read >= MAX_ANSWER_BYTES) done();
        });
        response.on('end', done);
        response.on('error', () => done());
      },
    );
    const timer = setTimeout(
      () => finish({ kind: 'failed', error: `the receiver did not answer within ${attempt.timeoutMs} ms` }),
      attempt.timeoutMs,
    );
    const onAbort = () => finish({ kind: 'failed', error: 'delivery stopped' });
    attempt.signal?.addEventListener('abort', onAbort);
    request.on('error', (error: NodeJS.ErrnoException) =>
      finish({ kind: 'failed', error: `the receiver could not be reached (${error.code ?? 'error'})` }),
    );
    request.end(attempt.body);
  });
}
