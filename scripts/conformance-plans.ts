// The plans and inputs of the conformance corpus (scripts/conformance-corpus.ts): plans with ids on every part, with
// carried FHIR, and coverage plans that hold every code the mapping can emit. Lone resources are wrapped in a plan
// by test/helpers/fixtures.ts (as the mapping tests do).
import { readFileSync } from 'node:fs';
import { BARRIER_LABEL, ROLE_LABEL } from '../src/fhir/mapping/codes.js';
import type { SharedCarePlan } from '../src/model/care-plan.js';
import { fromRoot } from '../src/paths.js';

export const examples = (name: string) =>
  JSON.parse(readFileSync(fromRoot('schemas', 'examples', name), 'utf8')) as Record<string, unknown>;

/** Ids on every part, so that $to-fhir writes PUT entries (an update of a stored plan). */
export function withIds(plan: SharedCarePlan, n: number): SharedCarePlan {
  const p = structuredClone(plan) as SharedCarePlan & Record<string, unknown>;
  p.id = `plan-${n}`;
  p.goals?.forEach((g, i) => {
    g.id = `goal-${n}-${i}`;
  });
  if (p.careTeam) p.careTeam.id = `team-${n}`;
  if (p.whatMatters) p.whatMatters.id = `wm-${n}`;
  p.preferences?.forEach((x, i) => {
    x.id = `pref-${n}-${i}`;
  });
  p.barriers?.forEach((x, i) => {
    x.id = `barrier-${n}-${i}`;
  });
  p.strengths?.forEach((x, i) => {
    x.id = `strength-${n}-${i}`;
  });
  p.activities?.forEach((x, i) => {
    x.id = `activity-${n}-${i}`;
  });
  return p;
}

export const LONG =
  `${'Ich möchte wieder selbst einkaufen gehen — 走路去市场 — caminar al mercado 🙂 '.repeat(40)}`.trim();

/** Carried FHIR the model has no field for (as $from-fhir would have put it in unmappedFhir). */
export function withCarried(plan: SharedCarePlan): SharedCarePlan {
  const p = structuredClone(plan);
  p.unmappedFhir = {
    note: [{ text: 'Carried note on the plan' }],
    identifier: [{ system: 'urn:oid:2.16.840.1.113883.19.5', value: 'ext-42' }],
  };
  p.goals?.forEach((g) => {
    g.unmappedFhir = { note: [{ text: 'Carried goal note' }] };
  });
  return p;
}

/** Plans that between them hold every role, barrier category, preference kind and activity form. */
export function coveragePlans(): SharedCarePlan[] {
  const patient = { reference: 'Patient/coverage', display: 'Zoë Ñúñez-Łukasz' };
  const roles = Object.keys(ROLE_LABEL) as (keyof typeof ROLE_LABEL)[];
  const barriers = Object.keys(BARRIER_LABEL) as (keyof typeof BARRIER_LABEL)[];
  const base: SharedCarePlan = {
    patient,
    status: 'active',
    intent: 'plan',
    title: LONG.slice(0, 200),
    description: LONG,
    period: { start: '2026-01-31', end: '2026-12-31' },
    created: '2026-01-31T09:30:00+01:00',
    author: { reference: 'Practitioner/dr-okafor', display: 'Dr Okafor' },
    contributors: [patient, { reference: 'RelatedPerson/ana-lopez', display: 'Ana' }],
    whatMatters: {
      statement: 'Being at home with my cat 🐈',
      values: ['Independence', 'Family'],
      recordedOn: '2026-01-31',
      expressedBy: patient,
    },
    preferences: [
      { kind: 'care-experience', statement: 'Speak Spanish with me', recordedOn: '2026-01-31T10:00:00Z' },
      { kind: 'treatment-intervention', statement: 'No surgery', expressedBy: patient },
    ],
    goals: [
      {
        key: 'g0',
        description: { text: 'Walk to the market' },
        lifecycleStatus: 'active',
        achievementStatus: 'in-progress',
        priority: 'high-priority',
        startDate: '2026-02-01',
        expressedBy: patient,
        targets: [
          {
            measure: { text: 'Distance' },
            quantity: { value: 800, unit: 'm', system: 'http://unitsofmeasure.org', code: 'm' },
            dueDate: '2026-06-30',
          },
        ],
        agreements: [
          { who: patient, status: 'agree' },
          { who: { reference: 'Practitioner/dr-okafor' }, status: 'pending' },
        ],
      },
    ],
    careTeam: {
      name: 'Everyone',
      status: 'active',
      members: roles.map((role, i) => ({
        member: i === 0 ? patient : { reference: `Practitioner/p-${role}`, display: ROLE_LABEL[role] },
        role,
        roleText: `${ROLE_LABEL[role]} — ${role}`,
      })),
    },
    barriers: [
      ...barriers.map((category) => ({ statement: `Barrier: ${category}`, category, goals: ['g0'] })),
      { statement: 'A barrier in words only' },
    ],
    strengths: [{ statement: 'Ana visits every day', goals: ['g0'] }, { statement: 'Loves music' }],
    activities: [
      {
        description: 'Home exercises',
        status: 'in-progress',
        scheduled: { start: '2026-02-01', end: '2026-05-01' },
        performers: [patient],
        goals: ['g0'],
        code: { text: 'Exercise' },
      },
      { status: 'scheduled', scheduledText: 'Every Saturday morning' },
      { reference: { reference: 'ServiceRequest/physio-1', display: 'Physiotherapy referral' } },
    ],
    decisions: [
      {
        question: 'Clinic or home?',
        options: [
          { title: 'Clinic', pros: ['Equipment'], cons: ['No bus'] },
          { title: 'Home', pros: ['No travel'] },
        ],
        chosenOption: 'Home',
        rationale: 'Transport',
        participants: [patient],
        decidedOn: '2026-01-31T10:15:00-05:00',
      },
      { question: 'Undecided question', options: [{ title: 'A' }, { title: 'B' }] },
    ],
  } as SharedCarePlan;
  return [base, withIds(base, 9000), withCarried(withIds(base, 9001))];
}
