// The OpenAPI document's delivery example works: its example headers are the Standard Webhooks signature of the
// example body with the example secret the document names, as the `standardwebhooks` package computes it (never
// the service's own code). The document is the committed openapi/openapi.json (a test elsewhere keeps it current).
import { readFileSync } from 'node:fs';
import { Webhook } from 'standardwebhooks';
import t from 'tap';
import { fromRoot } from '../../../../src/paths.js';

// biome-ignore lint/suspicious/noExplicitAny: the document is probed field by field
const document: any = JSON.parse(readFileSync(fromRoot('openapi', 'openapi.json'), 'utf8'));

t.test('the callback example: headers that sign the example body with the example secret', async (t) => {
  const delivery = document.components.schemas.WebhookDelivery;
  const secret = /`(whsec_[A-Za-z0-9+/=]+)`/.exec(delivery.description)?.[1];
  t.ok(secret, 'the description names the example secret');
  const callback =
    document.paths['/subscriptions'].post.callbacks.carePlanEvent['{$request.body#/endpoint}'].post;
  const headers = Object.fromEntries(
    callback.parameters.map((p: { name: string; example: string }) => [p.name, p.example]),
  );
  t.same(Object.keys(headers).sort(), ['webhook-id', 'webhook-signature', 'webhook-timestamp']);
  const body = JSON.stringify(delivery.example);
  const expected = new Webhook(secret as string).sign(
    headers['webhook-id'],
    new Date(Number(headers['webhook-timestamp']) * 1000),
    body,
  );
  t.equal(headers['webhook-signature'], expected, 'standardwebhooks computes the same signature');
  t.equal(
    callback.requestBody.content['application/json'].schema.$ref,
    '#/components/schemas/WebhookDelivery',
    'the body is the WebhookDelivery schema',
  );
  for (const path of [
    '/subscriptions',
    '/subscriptions/{id}',
    '/subscriptions/{id}/status',
    '/subscriptions/{id}/$replay',
  ])
    t.ok(document.paths[path], `${path} is documented`);
});
