// The quality-improvement measures of issue 17: each a proportion over the plans active at some time in the
// measurement period, defined in words on the plan model's fields. The same words are the population criteria of
// each FHIR Measure (text: no CQL engine runs here) and the README's definitions; criteria.ts implements them.
import type { Measure } from 'fhir/r4.js';
import { CANONICAL_BASE } from '../fhir/mapping/codes.js';
import { escapeXhtml } from '../fhir/mapping/narrative.js';

export type MeasureId =
  | 'what-matters-documented'
  | 'patient-expressed-goals'
  | 'goals-agreed-by-patient'
  | 'barriers-addressed'
  | 'decisions-shared'
  | 'goal-follow-up';

/** What one counted case is: a plan, or a part of one. */
export type MeasureUnit = 'plan' | 'goal' | 'barrier' | 'decision';

export interface MeasureDefinition {
  id: MeasureId;
  title: string;
  description: string;
  unit: MeasureUnit;
  initialPopulation: string;
  denominator: string;
  denominatorExclusion: string;
  numerator: string;
  /** Where the measure follows or differs from a published one. */
  basedOn?: string;
}

/** The plans every measure starts from (README "Quality measures"). */
export const PLANS_IN_PERIOD =
  'CarePlans this service wrote (they carry its identifier https://shared-care-plans.org/fhir/sid/care-plan; ' +
  'plans other systems wrote are not counted), whose status is not draft or entered-in-error, that were active at some ' +
  'time in the measurement period: the plan starts (period.start, else created) on or before the period end, and ends ' +
  '(period.end; for a completed or revoked plan without one, its last change) on or after the period start, compared ' +
  'by calendar date. A plan with no start is taken to have started before the period. With the patient filter (always ' +
  'for a patient token): only that patient’s plans.';

const PATIENT = 'the patient (the plan’s subject)';
const FAMILY = 'family (a RelatedPerson who is a member of the plan’s care team)';
const GOAL_EXCLUSION = 'Goals whose lifecycleStatus is cancelled or entered-in-error.';

export const MEASURES: readonly MeasureDefinition[] = [
  {
    id: 'what-matters-documented',
    title: 'What matters is documented in the patient’s words',
    description:
      'Of the plans active in the period, the share that record what matters to the patient, said by the patient.',
    unit: 'plan',
    initialPopulation: `Plans: ${PLANS_IN_PERIOD}`,
    denominator: 'The initial population.',
    denominatorExclusion: 'None.',
    numerator: `Plans with a what-matters statement (whatMatters.statement) expressed by ${PATIENT} (whatMatters.expressedBy).`,
  },
  {
    id: 'patient-expressed-goals',
    title: 'Goals expressed by the patient or family',
    description: 'Of the goals of the plans active in the period, the share the patient or family expressed.',
    unit: 'goal',
    initialPopulation: `The goals of the plans in the period. Plans: ${PLANS_IN_PERIOD}`,
    denominator: 'The initial population.',
    denominatorExclusion: GOAL_EXCLUSION,
    numerator: `Goals not excluded whose expressedBy is ${PATIENT} or ${FAMILY}.`,
  },
  {
    id: 'goals-agreed-by-patient',
    title: 'Goals the patient agreed to',
    description:
      'Of the goals of the plans active in the period, the share whose agreements include the patient’s agree.',
    unit: 'goal',
    initialPopulation: `The goals of the plans in the period. Plans: ${PLANS_IN_PERIOD}`,
    denominator: 'The initial population.',
    denominatorExclusion: GOAL_EXCLUSION,
    numerator: `Goals not excluded with an agreement (goal-acceptance) whose who is ${PATIENT} and whose status is agree.`,
  },
  {
    id: 'barriers-addressed',
    title: 'Barriers the plan works on',
    description:
      'Of the barriers recorded in the plans active in the period, the share at least one activity works on.',
    unit: 'barrier',
    initialPopulation: `The barriers of the plans in the period. Plans: ${PLANS_IN_PERIOD}`,
    denominator: 'The initial population.',
    denominatorExclusion: 'None.',
    numerator:
      'Barriers that at least one activity of the same plan works on: an activity whose status is not cancelled, stopped ' +
      'or entered-in-error and whose goals (activity.goals, CarePlan.activity.detail.goal) include a goal the barrier ' +
      'affects (barrier.goals, the barrier Observation’s focus). The model links barriers to goals and activities to ' +
      'goals, never a barrier to an activity directly, so "works on" goes through a shared goal; a barrier linked to no ' +
      'goal is worked on by nothing.',
  },
  {
    id: 'decisions-shared',
    title: 'Decisions taken together',
    description:
      'Of the decisions recorded in the plans active in the period, the share that were shared decisions.',
    unit: 'decision',
    initialPopulation: `The decisions (shared-decision extensions) of the plans in the period. Plans: ${PLANS_IN_PERIOD}`,
    denominator: 'The initial population.',
    denominatorExclusion: 'None.',
    numerator: `Decisions with at least two options, a chosen option that is one of them, a rationale, and ${PATIENT} among the participants.`,
  },
  {
    id: 'goal-follow-up',
    title: 'Goals followed up within 2 to 26 weeks',
    description:
      'Of the goals started at least two weeks before the period’s end, the share whose progress was recorded ' +
      'between two and twenty-six weeks after their start.',
    unit: 'goal',
    initialPopulation: `The goals of the plans in the period with a startDate on or before the period end minus 14 days. Plans: ${PLANS_IN_PERIOD}`,
    denominator: 'The initial population.',
    denominatorExclusion: GOAL_EXCLUSION,
    numerator:
      'Goals not excluded with a progress record at a time t from startDate + 14 days to startDate + 182 days, and within ' +
      'the measurement period. A progress record is a version of the Goal on the FHIR server (its instance history, the ' +
      'latest 100 versions, recorded at meta.lastUpdated) whose achievementStatus differs from the version before it (the ' +
      'first version is the baseline, not a change), or a Goal.note whose time is t. The model has no progress notes yet ' +
      '(issue 16); notes carried on a Goal are counted.',
    basedOn:
      'After the HL7 Person-Centered Outcomes IG Goal Follow-up measure (input/cql/GoalFollowUpMeasure.cql, ' +
      'GoalAttainmentLogic.cql: "Follow-Up Interval" 2 to 26 weeks after the goal start, follow-up during the ' +
      'measurement period). Differences: PCO counts patients (18 and over) and needs a goal attainment scaling (GAS) or ' +
      'PROM score Observation with the goal as focus; this measure counts goals, of plans active in the period (PCO: ' +
      'goals started in the period), and takes a change of achievementStatus or a note as the follow-up, since the ' +
      'service records no GAS or PROM scores.',
  },
];

export const MEASURE_BY_ID: ReadonlyMap<string, MeasureDefinition> = new Map(MEASURES.map((m) => [m.id, m]));

export const measureUrl = (id: MeasureId) => `${CANONICAL_BASE}/Measure/${id}`;
export const MEASURE_VERSION = '0.1.0';

const POPULATION_SYSTEM = 'http://terminology.hl7.org/CodeSystem/measure-population';
export const POPULATION_CODES = {
  initialPopulation: 'initial-population',
  denominator: 'denominator',
  denominatorExclusion: 'denominator-exclusion',
  numerator: 'numerator',
} as const;
export type PopulationName = keyof typeof POPULATION_CODES;
export const POPULATION_NAMES = Object.keys(POPULATION_CODES) as PopulationName[];

/** The names PCO's CQL measures give their populations (GoalFollowUpMeasure.cql). */
const CQL_NAMES: Record<PopulationName, string> = {
  initialPopulation: 'Initial Population',
  denominator: 'Denominator',
  denominatorExclusion: 'Denominator Exclusions',
  numerator: 'Numerator',
};

export const populationCode = (name: PopulationName) => ({
  coding: [{ system: POPULATION_SYSTEM, code: POPULATION_CODES[name] }],
});

/** The stratifiers a report offers (one so far). */
export const STRATIFIERS = {
  author:
    'The plan’s author (CarePlan.author: the organisation, practitioner or person who wrote it), or "none".',
} as const;

/** The definition as a FHIR R4 Measure, served at its canonical URL. */
export function measureResource(definition: MeasureDefinition): Measure {
  // R4 requires an Expression per population and its JSON schema allows only text/cql, text/fhirpath and
  // application/x-fhir-query: the criteria are the CQL names of the populations (as in PCO's measures), defined in
  // words by `description`; no CQL Library is published and no engine runs here (guidance says so).
  const criteria = (name: PopulationName, description: string) => ({
    code: populationCode(name),
    description,
    criteria: { language: 'text/cql', expression: CQL_NAMES[name], description },
  });
  const e = escapeXhtml;
  const populations = POPULATION_NAMES.map((name) => `<li>${CQL_NAMES[name]}: ${e(definition[name])}</li>`);
  return {
    resourceType: 'Measure',
    id: definition.id,
    // dom-6 (best practice): a narrative, generated from the same words.
    text: {
      status: 'generated',
      div: `<div xmlns="http://www.w3.org/1999/xhtml"><h2>${e(definition.title)}</h2><p>${e(definition.description)}</p><ul>${populations.join('')}</ul></div>`,
    },
    url: measureUrl(definition.id),
    version: MEASURE_VERSION,
    name: definition.id.replace(/(^|-)([a-z])/g, (_m, _dash, letter: string) => letter.toUpperCase()),
    title: definition.title,
    status: 'draft',
    experimental: false,
    publisher: 'shared-care-plans',
    description: definition.description,
    ...(definition.basedOn ? { relatedArtifact: [{ type: 'citation', citation: definition.basedOn }] } : {}),
    scoring: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/measure-scoring', code: 'proportion' }],
    },
    type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/measure-type', code: 'process' }] }],
    improvementNotation: {
      coding: [
        { system: 'http://terminology.hl7.org/CodeSystem/measure-improvement-notation', code: 'increase' },
      ],
    },
    guidance:
      `Each case is a ${definition.unit}. Score = numerator / (denominator - denominator exclusion); no score when that is 0. ` +
      'The population criteria are defined in words (each population’s description); their expressions only name the ' +
      'populations as CQL would, no CQL Library is published. Computed by GET /measures/{id}/report of ' +
      'shared-care-plans over the plans it stores.',
    group: [
      {
        population: [
          criteria('initialPopulation', definition.initialPopulation),
          criteria('denominator', definition.denominator),
          criteria('denominatorExclusion', definition.denominatorExclusion),
          criteria('numerator', definition.numerator),
        ],
        // A stratifier's criteria are optional (0..1): its code and description say what it is.
        stratifier: Object.entries(STRATIFIERS).map(([code, description]) => ({
          code: { text: code },
          description,
        })),
      },
    ],
  };
}

export const MEASURE_RESOURCES: ReadonlyMap<string, Measure> = new Map(
  MEASURES.map((m) => [`Measure/${m.id}`, measureResource(m)]),
);
