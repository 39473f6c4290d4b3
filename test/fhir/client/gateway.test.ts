// One FHIR id rule (issue 12): the pattern, and the FHIR client that refuses to put anything else in a URL path,
// whatever its caller checked. The client talks to the real embedded FHIR server.
import type { Bundle } from 'fhir/r4.js';
import t from 'tap';
import { FhirGateway, FhirServerError } from '../../../src/fhir/client/gateway.js';
import { FHIR_ID_PATTERN, isFhirId, parseLiteralReference } from '../../../src/fhir/fhir-id.js';
import { startTestService } from '../../helpers/service.js';

t.test('the FHIR id rule: [A-Za-z0-9\\-.]{1,64} (FHIR R4 datatypes), never only dots', async (t) => {
  for (const id of ['a', 'plan-1', 'A.b-9', '0', 'x'.repeat(64), '.a', 'a..'])
    t.ok(isFhirId(id), `${id} is an id`);
  for (const id of ['', '.', '..', '...', 'x'.repeat(65), 'a/b', 'a b', '%2e', 'a_b', '#a', 'é'])
    t.notOk(isFhirId(id), `"${id}" is not`);
  const pattern = new RegExp(`^${FHIR_ID_PATTERN}$`);
  t.ok(pattern.test('plan-1') && !pattern.test('..'), 'the schema pattern says the same');
  t.same(parseLiteralReference('Goal/g-1'), { type: 'Goal', id: 'g-1' });
  for (const reference of ['Goal/..', 'Goal/.', 'goal/x', 'Goal/a/b', 'Goal', '#x', 'urn:uuid:1'])
    t.equal(parseLiteralReference(reference), undefined, `${reference} is not a literal Type/id`);
});

t.test('the FHIR client never puts an id that breaks the rule in a URL path', async (t) => {
  const service = await startTestService();
  t.teardown(() => service.close());
  const gateway = new FhirGateway({ baseUrl: service.fhirBaseUrl, timeoutMs: 5000, maxRetries: 0 });
  for (const id of ['.', '..', 'a/../b', '']) {
    const read = await gateway.read('CarePlan', id, {}).catch((error) => error);
    t.ok(read instanceof FhirServerError && read.kind === 'not-found', `read CarePlan/"${id}": not found`);
    const history = await gateway.history('CarePlan', id, {}).catch((error) => error);
    t.ok(history instanceof FhirServerError && history.kind === 'not-found', `history of "${id}": not found`);
  }
  const badType = await gateway.read('../metadata', 'x', {}).catch((error) => error);
  t.ok(badType instanceof FhirServerError && badType.kind === 'not-found', 'a resource type that is not one');
  const many = await gateway.readMany(['Goal/..', 'Goal/.', 'CareTeam/../Patient'], {});
  t.equal(many.size, 0, 'readMany reads no reference that breaks the rule');
  for (const url of ['CarePlan/..', 'CarePlan/./x', '../CarePlan', '']) {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ request: { method: 'DELETE', url } }],
    };
    const sent = await gateway.transaction(bundle, { idempotent: false }).catch((error) => error);
    t.ok(
      sent instanceof FhirServerError && sent.kind === 'rejected',
      `a transaction entry "${url}" is never sent`,
    );
  }
  const { status } = await service.fhir('CarePlan?_summary=count');
  t.equal(status, 200, 'the FHIR server is untouched and answering');
});
