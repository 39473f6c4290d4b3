// A generated population of plans for the measures tests: each plan is made from a small spec (chosen from its index),
// and the expected counts of every measure are computed from those specs alone, never by the service's code.
// Dates are day offsets from today (UTC), so the goal-follow-up windows are known to the test in plain integers.

export const MEASUREMENT_PERIOD = { startOffset: -60, endOffset: 30 };

type Timing = 'in' | 'before' | 'after' | 'draft' | 'no-period' | 'ended';

export interface GoalSpec {
  expressedBy: 'patient' | 'family' | 'practitioner';
  cancelled: boolean;
  patientAgreement: 'agree' | 'pending' | 'none';
  startOffset: number;
  /** achievementStatus changed by a PATCH after the plan is created (today). */
  patched: boolean;
  /** A Goal.note at this day offset. */
  noteOffset?: number;
}

export interface PlanSpec {
  index: number;
  patient: string;
  author?: string;
  timing: Timing;
  whatMatters: 'patient' | 'family' | 'none';
  familyOnTeam: boolean;
  goals: GoalSpec[];
  /** Each barrier's linked goal (index), if any. */
  barriers: (number | undefined)[];
  activities: { goal: number; status: 'in-progress' | 'cancelled' }[];
  decisions: { options: number; chosen: boolean; rationale: boolean; patientTakesPart: boolean }[];
}

export const AUTHORS = [
  'Organization/riverside',
  'Organization/hillside',
  'Practitioner/dr-okafor',
  undefined,
];
const TIMINGS: Timing[] = ['in', 'in', 'before', 'draft', 'no-period', 'after', 'ended'];

export function specs(count: number, patients: string[]): PlanSpec[] {
  return Array.from({ length: count }, (_, i): PlanSpec => {
    const goals = Array.from(
      { length: i % 4 },
      (_, j): GoalSpec => ({
        expressedBy: (['patient', 'family', 'practitioner'] as const)[(i + j) % 3],
        cancelled: j === 2,
        patientAgreement: (['agree', 'pending', 'none'] as const)[(i + 2 * j) % 3],
        startOffset: j === 0 ? -30 : j === 1 ? (i % 2 === 0 ? -300 : -5) : i % 2 === 0 ? 20 : -30,
        patched: (i + j) % 2 === 0,
        ...(j === 1 && i % 4 === 1 ? { noteOffset: 10 } : j === 1 && i % 4 === 3 ? { noteOffset: 0 } : {}),
      }),
    );
    const activities: PlanSpec['activities'] = goals
      .map((_, j) => j)
      .filter((j) => j % 2 === 0)
      .map((goal) => ({ goal, status: 'in-progress' }));
    if (i % 5 === 0 && goals.length > 1) activities.push({ goal: 1, status: 'cancelled' });
    return {
      index: i,
      patient: patients[i % patients.length],
      author: AUTHORS[i % AUTHORS.length],
      timing: TIMINGS[i % TIMINGS.length],
      whatMatters: (['patient', 'family', 'none'] as const)[(i >> 1) % 3],
      familyOnTeam: i % 2 === 0,
      goals,
      barriers: Array.from({ length: i % 3 }, (_, k) =>
        (i % 5 === 2 && k === 0) || goals.length === 0 ? undefined : k % goals.length,
      ),
      activities,
      decisions: Array.from({ length: i % 3 === 0 ? 2 : i % 3 === 1 ? 1 : 0 }, (_, d) => ({
        options: (i + d) % 4 === 3 ? 1 : 2,
        chosen: (i + d) % 5 !== 4,
        rationale: (i + d) % 3 !== 2,
        patientTakesPart: (i + d) % 2 === 0,
      })),
    };
  });
}

export function day(offset: number): string {
  return new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
}

/** The plan body for POST /care-plans. */
export function planOf(spec: PlanSpec): Record<string, unknown> {
  const { index: i, patient } = spec;
  const family = `RelatedPerson/family-${i}`;
  const who = (by: GoalSpec['expressedBy']) =>
    by === 'patient' ? patient : by === 'family' ? family : 'Practitioner/dr-okafor';
  const periods: Record<Timing, [number, number] | undefined> = {
    in: [-90, 90],
    before: [-400, -100],
    after: [40, 200],
    draft: [-90, 90],
    'no-period': undefined,
    ended: [-200, -70],
  };
  const period = periods[spec.timing];
  return {
    patient: { reference: patient },
    status: spec.timing === 'draft' ? 'draft' : spec.timing === 'ended' ? 'completed' : 'active',
    intent: 'plan',
    title: `Plan ${i}`,
    ...(period
      ? { period: { start: day(period[0]), end: day(period[1]) } }
      : { created: `${day(-10)}T10:00:00Z` }),
    ...(spec.author ? { author: { reference: spec.author } } : {}),
    ...(spec.whatMatters === 'none'
      ? {}
      : {
          whatMatters: {
            statement: 'Being at home with my family',
            expressedBy: { reference: spec.whatMatters === 'patient' ? patient : family },
          },
        }),
    careTeam: {
      members: [
        { member: { reference: patient }, role: 'patient' },
        ...(spec.familyOnTeam ? [{ member: { reference: family }, role: 'family-member' }] : []),
        { member: { reference: 'Practitioner/dr-okafor' }, role: 'physician' },
      ],
    },
    ...(spec.goals.length
      ? {
          goals: spec.goals.map((goal, j) => ({
            key: `g${j}`,
            description: { text: `Goal ${j} of plan ${i}` },
            expressedBy: { reference: who(goal.expressedBy) },
            lifecycleStatus: goal.cancelled ? 'cancelled' : 'active',
            achievementStatus: 'in-progress',
            startDate: day(goal.startOffset),
            agreements:
              goal.patientAgreement === 'none'
                ? [{ who: { reference: 'Practitioner/dr-okafor' }, status: 'agree' }]
                : [{ who: { reference: patient }, status: goal.patientAgreement }],
            ...(goal.noteOffset === undefined
              ? {}
              : {
                  unmappedFhir: {
                    note: [{ text: 'Talked about how it goes', time: `${day(goal.noteOffset)}T12:00:00Z` }],
                  },
                }),
          })),
        }
      : {}),
    ...(spec.barriers.length
      ? {
          barriers: spec.barriers.map((goal, k) => ({
            statement: `Barrier ${k}`,
            category: 'time',
            ...(goal === undefined ? {} : { goals: [`g${goal}`] }),
          })),
        }
      : {}),
    ...(spec.activities.length
      ? {
          activities: spec.activities.map((a, n) => ({
            description: `Activity ${n}`,
            status: a.status,
            goals: [`g${a.goal}`],
          })),
        }
      : {}),
    ...(spec.decisions.length
      ? {
          decisions: spec.decisions.map((d) => ({
            question: 'Which way?',
            options: [{ title: 'This way' }, { title: 'That way' }].slice(0, d.options),
            ...(d.chosen ? { chosenOption: 'This way' } : {}),
            ...(d.rationale ? { rationale: 'It fits what matters' } : {}),
            participants: [
              ...(d.patientTakesPart ? [{ reference: patient }] : []),
              { reference: 'Practitioner/dr-okafor' },
            ],
          })),
        }
      : {}),
  };
}

export interface Populations {
  initialPopulation: number;
  denominator: number;
  denominatorExclusion: number;
  numerator: number;
}

type Case = { excluded: boolean; numerator: boolean };

/** Active at some time in the measurement period, from the spec's timing (see planOf's periods). */
const inPeriod = (spec: PlanSpec) => spec.timing === 'in' || spec.timing === 'no-period';

/** The cases a plan contributes, from its spec alone. */
function expectedCases(measure: string, spec: PlanSpec): Case[] {
  const { startOffset: periodStart, endOffset: periodEnd } = MEASUREMENT_PERIOD;
  switch (measure) {
    case 'what-matters-documented':
      return [{ excluded: false, numerator: spec.whatMatters === 'patient' }];
    case 'patient-expressed-goals':
      return spec.goals.map((g) => ({
        excluded: g.cancelled,
        numerator:
          !g.cancelled && (g.expressedBy === 'patient' || (g.expressedBy === 'family' && spec.familyOnTeam)),
      }));
    case 'goals-agreed-by-patient':
      return spec.goals.map((g) => ({
        excluded: g.cancelled,
        numerator: !g.cancelled && g.patientAgreement === 'agree',
      }));
    case 'barriers-addressed':
      return spec.barriers.map((goal) => ({
        excluded: false,
        numerator:
          goal !== undefined && spec.activities.some((a) => a.goal === goal && a.status === 'in-progress'),
      }));
    case 'decisions-shared':
      return spec.decisions.map((d) => ({
        excluded: false,
        numerator: d.options >= 2 && d.chosen && d.rationale && d.patientTakesPart,
      }));
    case 'goal-follow-up':
      return spec.goals
        .filter((g) => g.startOffset <= periodEnd - 14)
        .map((g) => {
          const from = Math.max(g.startOffset + 14, periodStart);
          const to = Math.min(g.startOffset + 182, periodEnd);
          const inWindow = (offset: number) => offset >= from && offset <= to;
          return {
            excluded: g.cancelled,
            numerator:
              !g.cancelled &&
              ((g.patched && inWindow(0)) || (g.noteOffset !== undefined && inWindow(g.noteOffset))),
          };
        });
    default:
      throw new Error(`no expectation for ${measure}`);
  }
}

export function expected(
  measure: string,
  all: PlanSpec[],
  filter: (spec: PlanSpec) => boolean = () => true,
): { populations: Populations; score: number | null } {
  const populations = { initialPopulation: 0, denominator: 0, denominatorExclusion: 0, numerator: 0 };
  for (const spec of all.filter((s) => inPeriod(s) && filter(s))) {
    for (const c of expectedCases(measure, spec)) {
      populations.initialPopulation++;
      populations.denominator++;
      if (c.excluded) populations.denominatorExclusion++;
      if (c.numerator) populations.numerator++;
    }
  }
  const base = populations.denominator - populations.denominatorExclusion;
  return { populations, score: base > 0 ? populations.numerator / base : null };
}

export const MEASURE_IDS = [
  'what-matters-documented',
  'patient-expressed-goals',
  'goals-agreed-by-patient',
  'barriers-addressed',
  'decisions-shared',
  'goal-follow-up',
];
