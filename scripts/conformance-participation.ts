// The conformance corpus's participation flow (issue 16): people write in their own name through the API, with
// tokens from a loopback issuer (AUTH_MODE=jwt): the patient, a family member on the team and a professional agree
// with goals, write notes on their progress, add preferences, strengths and barriers and say what matters. What
// the service stores then (goal-acceptance by a RelatedPerson, Goal.note with authorReference, the contribution
// extension, Observation.performer, Condition.asserter, Provenance with person agents) goes into the corpus.
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/http/app.js';
import type { SharedCarePlan } from '../src/model/care-plan.js';
import { AUDIENCE, ISSUER, startIssuer } from '../test/helpers/auth.js';

interface Flow {
  fhirBaseUrl: string;
  publicBaseUrl: string;
  usCoreVersion: '6.1.0' | '7.0.0';
  plan: SharedCarePlan;
  logger: Parameters<typeof buildApp>[1] extends infer O
    ? O extends { logger?: infer L }
      ? L
      : never
    : never;
  /** Called before each write (its name) and after it (undefined), so the proxy can label the transaction. */
  step(name: string | undefined): void;
  readStored(id: string, step: string): Promise<void>;
  problem(text: string): void;
}

export async function participationFlow(flow: Flow): Promise<void> {
  const issuer = await startIssuer();
  const config = {
    ...loadConfig({
      LOG_LEVEL: 'silent',
      AUTH_MODE: 'jwt',
      AUTH_JWKS_URL: issuer.jwksUrl,
      AUTH_ISSUER: ISSUER,
      AUTH_AUDIENCE: AUDIENCE,
      FHIR_PUBLIC_BASE_URL: flow.publicBaseUrl,
      US_CORE_VERSION: flow.usCoreVersion,
    }),
    fhirBaseUrl: flow.fhirBaseUrl,
  };
  const app: FastifyInstance = await buildApp(config, { logger: flow.logger });
  await app.ready();
  const patient = flow.plan.patient.reference?.split('/')[1] as string;
  const as = (claims: Record<string, unknown>) =>
    issuer.token({ sub: 'app', client_id: 'participation-app', ...claims });
  const people = {
    system: await as({ scope: 'system/CarePlan.cruds' }),
    patient: await as({ scope: 'patient/CarePlan.cruds', patient, fhirUser: `Patient/${patient}` }),
    family: await as({ scope: 'patient/CarePlan.cruds', patient, fhirUser: 'RelatedPerson/ana-lopez' }),
    doctor: await as({ scope: 'user/CarePlan.cruds', fhirUser: 'Practitioner/dr-okafor' }),
    nurseRole: await as({ scope: 'user/CarePlan.cruds', fhirUser: 'PractitionerRole/nurse-kim-ward' }),
  };
  const send = async (
    name: string,
    who: keyof typeof people,
    method: 'POST' | 'PUT',
    url: string,
    body: unknown,
  ) => {
    flow.step(name);
    const reply = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${people[who]}`, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
    flow.step(undefined);
    if (reply.statusCode >= 300) flow.problem(`${name}: ${reply.statusCode} ${reply.body.slice(0, 300)}`);
    return reply.json() as SharedCarePlan & { id: string };
  };
  try {
    const created = await send('participation create', 'doctor', 'POST', '/care-plans', flow.plan);
    const id = created.id;
    if (!id) return;
    const goalId = created.goals?.[0]?.id as string;
    const otherGoalId = created.goals?.[1]?.id as string;
    const base = `/care-plans/${id}`;
    await send('participation agreement (patient)', 'patient', 'POST', `${base}/goals/${goalId}/agreements`, {
      status: 'agree',
      note: 'This is what I want',
    });
    await send('participation agreement (family)', 'family', 'POST', `${base}/goals/${goalId}/agreements`, {
      status: 'disagree',
      note: 'Too far for now',
    });
    await send(
      'participation agreement recorded by a professional',
      'doctor',
      'POST',
      `${base}/goals/${otherGoalId}/agreements`,
      {
        status: 'pending',
        who: { reference: 'RelatedPerson/ana-lopez', display: 'Ana Lopez' },
      },
    );
    await send('participation note (family)', 'family', 'POST', `${base}/goals/${goalId}/notes`, {
      text: 'Walked to the corner with me today',
      achievementStatus: 'improving',
    });
    await send(
      'participation note (practitioner role)',
      'nurseRole',
      'POST',
      `${base}/goals/${goalId}/notes`,
      {
        text: 'Blood pressure fine after the walk',
      },
    );
    await send('participation preference (family)', 'family', 'POST', `${base}/preferences`, {
      kind: 'care-experience',
      statement: 'Call me, not my mother, before 9',
    });
    await send('participation strength (patient)', 'patient', 'POST', `${base}/strengths`, {
      statement: 'My neighbour walks with me',
    });
    await send('participation barrier (family)', 'family', 'POST', `${base}/barriers`, {
      statement: 'Ice on the pavement',
      category: 'other',
    });
    await send('participation what matters (patient)', 'patient', 'PUT', `${base}/what-matters`, {
      statement: 'Being at home, and my garden',
    });
    await flow.readStored(id, 'participation');
  } finally {
    await app.close();
    await issuer.close();
  }
}
