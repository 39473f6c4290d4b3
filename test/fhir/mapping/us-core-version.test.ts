// US_CORE_VERSION: every profile the service claims is of the configured US Core version and exists in that version's
// official package (test/conformance/packages, unchanged copies); reading takes the claims of that version only.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Bundle, Provenance, Resource } from 'fhir/r4.js';
import t from 'tap';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { examplePlan, startTestService } from '../../helpers/service.js';

const PACKAGES = join(import.meta.dirname, '..', '..', 'conformance', 'packages');
const US_CORE = 'http://hl7.org/fhir/us/core/StructureDefinition/';

/** The ids of the StructureDefinitions an official US Core package holds (its file names). */
function profilesIn(version: string): Set<string> {
  const listing = execFileSync('tar', ['-tzf', join(PACKAGES, `hl7.fhir.us.core-${version}.tgz`)], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const ids = [...listing.matchAll(/^package\/StructureDefinition-(.+)\.json$/gm)].map((m) => m[1]);
  return new Set(ids);
}

const claimsOf = (resources: Resource[]) => resources.flatMap((r) => r.meta?.profile ?? []);
const entries = (bundle: Bundle) => (bundle.entry ?? []).map((e) => e.resource as Resource);

t.test(
  'US_CORE_VERSION: 6.1.0 by default, 7.0.0 allowed, anything else stops the start naming it',
  async (t) => {
    t.equal(loadConfig({}).usCoreVersion, '6.1.0');
    t.equal(loadConfig({ US_CORE_VERSION: '7.0.0' }).usCoreVersion, '7.0.0');
    let error: unknown;
    try {
      loadConfig({ US_CORE_VERSION: '5.0.1' });
    } catch (caught) {
      error = caught;
    }
    t.ok(error instanceof ConfigError, 'a ConfigError');
    t.match((error as Error | undefined)?.message, /US_CORE_VERSION/, 'naming the variable');
  },
);

for (const version of ['6.1.0', '7.0.0']) {
  t.test(`US Core ${version}: every claim is of that version and exists in its package`, async (t) => {
    const known = profilesIn(version);
    t.ok(known.has('us-core-careplan'), `the ${version} package lists its profiles`);
    const app = await startTestService({ US_CORE_VERSION: version });
    t.teardown(() => app.close());
    const reply = await app.app.inject({
      method: 'POST',
      url: '/care-plans/$to-fhir',
      payload: examplePlan(),
    });
    t.equal(reply.statusCode, 200);
    const resources = entries(reply.json() as Bundle);
    const claims = claimsOf(resources);
    t.ok(claims.length >= 3, `${claims.length} claims`);
    for (const claim of new Set(claims)) {
      const [url, claimed] = claim.split('|');
      t.equal(claimed, version, `${claim}: version ${version}`);
      t.ok(
        url.startsWith(US_CORE) && known.has(url.slice(US_CORE.length)),
        `${claim}: in the ${version} package`,
      );
    }
    // Preferences (LOINC 95541-9 / 75773-2) claim the preference profiles exactly where they exist: 7.0.0 on.
    const preferences = resources.filter((r) =>
      (r as { code?: { coding?: { code?: string }[] } }).code?.coding?.some(
        (c) => c.code === '95541-9' || c.code === '75773-2',
      ),
    );
    t.ok(preferences.length > 0, 'the example has preferences');
    const expected = (r: Resource) =>
      version === '6.1.0'
        ? []
        : [
            `${US_CORE}${JSON.stringify(r).includes('95541-9') ? 'us-core-care-experience-preference' : 'us-core-treatment-intervention-preference'}|7.0.0`,
          ];
    for (const preference of preferences) t.same(preference.meta?.profile ?? [], expected(preference));

    // A stored plan's Provenance claims us-core-provenance of the same version.
    const created = await app.app.inject({ method: 'POST', url: '/care-plans', payload: examplePlan() });
    t.equal(created.statusCode, 201);
    const id = (created.json() as { id: string }).id;
    const found = await app.fhir<Bundle>(`Provenance?target=CarePlan/${id}`);
    const provenance = entries(found.body)[0] as Provenance | undefined;
    t.same(provenance?.meta?.profile, [`${US_CORE}us-core-provenance|${version}`]);
    t.ok(known.has('us-core-provenance'));

    // Reading: the claim of this version is the service's own (taken); another version's is kept, not claimed.
    const other = version === '6.1.0' ? '7.0.0' : '6.1.0';
    const input: Bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: ((reply.json() as Bundle).entry ?? []).map((e) => ({
        fullUrl: e.fullUrl,
        resource:
          e.resource?.resourceType === 'Goal'
            ? { ...e.resource, meta: { profile: [`${US_CORE}us-core-goal|${other}`] } }
            : e.resource,
      })),
    };
    const read = await app.app.inject({
      method: 'POST',
      url: '/care-plans/$from-fhir',
      headers: { 'content-type': 'application/fhir+json' },
      payload: JSON.stringify(input),
    });
    t.equal(read.statusCode, 200);
    const plan = read.json() as { unmappedFhir?: unknown; goals?: { unmappedFhir?: unknown }[] };
    t.equal(plan.unmappedFhir, undefined, `the CarePlan's ${version} claim is taken`);
    t.same(plan.goals?.[0]?.unmappedFhir, {
      meta: {
        extension: [
          {
            url: 'https://shared-care-plans.org/fhir/StructureDefinition/source-profile-claim',
            valueCanonical: `${US_CORE}us-core-goal|${other}`,
          },
        ],
      },
    });
  });
}
