// The webhook settings, the SSRF rules, the secrets at rest, the backoff and one delivery attempt, each checked on
// its own (the end-to-end behaviour is in test/webhooks.test.ts).
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.js';
import { attemptDelivery } from '../../src/subscriptions/delivery.js';
import { backoffMs } from '../../src/subscriptions/delivery-worker.js';
import { endpointProblem, isPublicAddress, resolveEndpoint } from '../../src/subscriptions/endpoint.js';
import { decryptSecret, encryptSecret, newSecret } from '../../src/subscriptions/secret.js';
import { loopback } from '../helpers/auth.js';
import { startTestService } from '../helpers/service.js';

t.test('settings: validated, with safe defaults', async (t) => {
  const local = loadConfig({}).webhooks;
  t.equal(local.secretKey?.length, 32, 'embedded server: a random key per process');
  t.same(local.allowedHosts, ['localhost', '127.0.0.1', '[::1]'], 'embedded server: loopback allowed');
  t.match(local, {
    timeoutMs: 10_000,
    retryMinMs: 1_000,
    retryMaxMs: 300_000,
    retryForMs: 86_400_000,
    leaseMs: 30_000,
  });
  const external = loadConfig({ FHIR_BASE_URL: 'https://fhir.example/r4', AUTH_MODE: 'none' }).webhooks;
  t.equal(external.secretKey, undefined, 'an external FHIR server and no key: subscriptions off');
  t.same(
    external.allowedHosts,
    [],
    'an external FHIR server: no host allowed plain http or private addresses',
  );
  const hex = randomBytes(32);
  t.same(loadConfig({ WEBHOOK_SECRET_KEY: hex.toString('hex') }).webhooks.secretKey, hex);
  t.same(loadConfig({ WEBHOOK_SECRET_KEY: hex.toString('base64') }).webhooks.secretKey, hex);
  t.same(loadConfig({ WEBHOOK_ALLOWED_HOSTS: 'Hooks.Internal, 10.0.0.5' }).webhooks.allowedHosts, [
    'hooks.internal',
    '10.0.0.5',
  ]);
  for (const env of [
    { WEBHOOK_SECRET_KEY: 'short' },
    { WEBHOOK_SECRET_KEY: randomBytes(16).toString('hex') },
    { WEBHOOK_LEASE_MS: '5000', WEBHOOK_TIMEOUT_MS: '2000' },
    { WEBHOOK_RETRY_MIN_MS: '5000', WEBHOOK_RETRY_MAX_MS: '1000' },
    { WEBHOOK_TIMEOUT_MS: '50' },
  ]) {
    let refusal: unknown;
    try {
      loadConfig(env);
    } catch (error) {
      refusal = error;
    }
    t.ok(
      refusal instanceof ConfigError && /WEBHOOK_/.test(refusal.message),
      `refused: ${JSON.stringify(env)}`,
    );
  }
});

t.test(
  'SSRF: https only, no private, loopback or link-local address unless the host is allowed',
  async (t) => {
    for (const address of [
      '10.0.0.1',
      '127.0.0.1',
      '169.254.169.254',
      '192.168.1.1',
      '172.16.0.1',
      '100.64.0.1',
      '::1',
      'fe80::1',
      'fd12::1',
      '::ffff:127.0.0.1',
      '0.0.0.0',
    ]) {
      t.notOk(isPublicAddress(address), `${address} is not public`);
    }
    for (const address of ['93.184.215.14', '2606:4700::6810:84e5', '8.8.8.8'])
      t.ok(isPublicAddress(address), `${address} is public`);
    t.equal(endpointProblem('https://hooks.example.org/x', []), undefined);
    t.match(endpointProblem('http://hooks.example.org/x', []), /must be https/);
    t.equal(
      endpointProblem('http://hooks.internal/x', ['hooks.internal']),
      undefined,
      'an allowed host may be http',
    );
    t.match(endpointProblem('https://localhost/x', []), /loopback/);
    t.match(endpointProblem('https://[::1]/x', []), /private, loopback/);
    t.match(endpointProblem('https://x.example/#frag', []), /fragment/);
    // After DNS: a name that resolves to loopback is refused at delivery time, whatever it looked like.
    await t.rejects(resolveEndpoint(new URL('https://localhost/x'), []), { message: /private, loopback/ });
    await t.rejects(resolveEndpoint(new URL('https://no-such-host.invalid/x'), []), {
      message: /does not resolve/,
    });
    t.same(await resolveEndpoint(new URL('https://8.8.8.8/x'), []), { address: '8.8.8.8', family: 4 });
    t.same(
      await resolveEndpoint(new URL('http://localhost:1/x'), ['localhost']).then((r) => r.address.length > 0),
      true,
    );
  },
);

t.test('secrets: sealed with the key, unreadable with another or when changed', async (t) => {
  const key = randomBytes(32);
  const secret = newSecret();
  const sealed = encryptSecret(secret, key);
  t.notOk(sealed.includes(secret.slice(6)), 'not in clear');
  t.equal(decryptSecret(sealed, key), secret);
  t.equal(decryptSecret(sealed, randomBytes(32)), undefined, 'another key');
  const parts = sealed.split('.');
  parts[2] = Buffer.from('tampered').toString('base64url');
  t.equal(decryptSecret(parts.join('.'), key), undefined, 'changed');
  t.equal(decryptSecret('v2.a.b.c', key), undefined, 'unknown form');
});

t.test(
  'backoff: exponential with jitter from the minimum to the cap, Retry-After honoured up to the cap',
  async (t) => {
    const config = loadConfig({ WEBHOOK_RETRY_MIN_MS: '1000', WEBHOOK_RETRY_MAX_MS: '60000' }).webhooks;
    for (let attempts = 1; attempts <= 12; attempts++) {
      const step = Math.min(60_000, 1000 * 2 ** (attempts - 1));
      const delay = backoffMs(config, attempts);
      t.ok(
        delay >= step / 2 && delay <= step,
        `attempt ${attempts}: ${Math.round(delay)} ms within [${step / 2}, ${step}]`,
      );
    }
    t.ok(backoffMs(config, 1, 30_000) >= 30_000, 'Retry-After: 30 s waits 30 s');
    t.ok(backoffMs(config, 1, 3_600_000) <= 60_000, 'a Retry-After past the cap waits the cap');
  },
);

t.test('one attempt: redirects are not followed, an unreachable receiver is a failure', async (t) => {
  let redirected = 0;
  const target = await loopback((_req, res) => {
    redirected++;
    res.end();
  });
  const redirecting = await loopback((_req, res) =>
    res.writeHead(307, { location: `${target.url}/elsewhere` }).end('x'.repeat(10_000)),
  );
  t.teardown(async () => {
    await target.close();
    await redirecting.close();
  });
  const attempt = {
    allowedHosts: ['127.0.0.1'],
    secret: newSecret(),
    messageId: 'msg_1',
    body: '{}',
    timeoutMs: 2000,
  };
  const result = await attemptDelivery({ ...attempt, endpoint: `${redirecting.url}/hook` });
  t.match(result, { kind: 'failed', error: /307 \(redirects are not followed\)/ });
  t.equal(redirected, 0, 'the redirect target was never contacted');
  t.match(await attemptDelivery({ ...attempt, endpoint: 'http://127.0.0.1:1/hook' }), {
    kind: 'failed',
    error: /could not be reached/,
  });
  t.match(await attemptDelivery({ ...attempt, endpoint: `${target.url}/hook`, allowedHosts: [] }), {
    kind: 'failed',
    error: /private, loopback/,
  });
});

t.test('with an external FHIR server and no WEBHOOK_SECRET_KEY, subscriptions are off: 503', async (t) => {
  const service = await startTestService({ FHIR_BASE_URL: 'http://127.0.0.1:1/fhir', AUTH_MODE: 'none' });
  t.teardown(() => service.close());
  const answer = await service.app.inject({
    method: 'POST',
    url: '/subscriptions',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ endpoint: 'https://hooks.example.org/x' }),
  });
  t.equal(answer.statusCode, 503);
  t.equal(answer.json().type, 'https://shared-care-plans.org/problems/webhooks-unavailable');
});
