// A measure's counts as they are gathered (Tally), the report they make (JSON), and the same report as a FHIR R4
// MeasureReport. Pure: no I/O. Scoring of a proportion (FHIR R4 Measure, "Proportion" in the Quality Reporting
// page, http://hl7.org/fhir/R4/clinicalreasoning-quality-reporting.html#proportion-measure-scoring):
// numerator / (denominator - denominator exclusion); when that is 0 there is no score, never a division by zero.
import type { List, MeasureReport, MeasureReportGroupPopulation } from 'fhir/r4.js';
import type { MeasureCase, MeasurementPeriod } from './criteria.js';
import {
  MEASURE_VERSION,
  type MeasureId,
  measureUrl,
  POPULATION_NAMES,
  type PopulationName,
  populationCode,
} from './definitions.js';

export type Populations = Record<PopulationName, number>;
export type ReportType = 'summary' | 'subject-list';

export interface Stratum {
  stratifier: 'author';
  value: string;
  populations: Populations;
  score: number | null;
}

export interface MeasureResult {
  measure: MeasureId;
  measureUrl: string;
  period: MeasurementPeriod;
  /** Set when the report is for one patient's plans. */
  patient?: string;
  /** When the computation started: plans changed after it are left to the next report. */
  date: string;
  reportType: ReportType;
  populations: Populations;
  score: number | null;
  strata: Stratum[];
  /** subject-list: the resources (CarePlan/id, Goal/id, Observation/id) in each population. */
  subjects?: Record<PopulationName, string[]>;
}

/** Strata kept apart at most; cases of further author values are counted in one stratum "(other)". */
export const MAX_STRATA = 1000;
export const OTHER_STRATUM = '(other)';

const empty = (): Populations => ({
  initialPopulation: 0,
  denominator: 0,
  denominatorExclusion: 0,
  numerator: 0,
});

function add(populations: Populations, c: MeasureCase): void {
  populations.initialPopulation++;
  populations.denominator++;
  if (c.excluded) populations.denominatorExclusion++;
  else if (c.numerator) populations.numerator++;
}

export function scoreOf(p: Populations): number | null {
  const base = p.denominator - p.denominatorExclusion;
  return base > 0 ? p.numerator / base : null;
}

export class SubjectLimitExceeded extends Error {
  constructor(readonly limit: number) {
    super(`more than ${limit} subjects in one population`);
  }
}

/** The counts of one report, gathered case by case: memory grows with the strata (bounded), not the cases. */
export class Tally {
  private readonly total = empty();
  private readonly strata = new Map<string, Populations>();
  private readonly subjects?: Record<PopulationName, string[]>;

  constructor(
    listSubjects: boolean,
    private readonly maxSubjects: number,
  ) {
    if (listSubjects)
      this.subjects = { initialPopulation: [], denominator: [], denominatorExclusion: [], numerator: [] };
  }

  add(c: MeasureCase, author: string): void {
    add(this.total, c);
    const key = this.strata.has(author) || this.strata.size < MAX_STRATA ? author : OTHER_STRATUM;
    const stratum = this.strata.get(key) ?? empty();
    this.strata.set(key, stratum);
    add(stratum, c);
    if (this.subjects) {
      if (this.subjects.initialPopulation.length >= this.maxSubjects)
        throw new SubjectLimitExceeded(this.maxSubjects);
      this.subjects.initialPopulation.push(c.subject);
      this.subjects.denominator.push(c.subject);
      if (c.excluded) this.subjects.denominatorExclusion.push(c.subject);
      else if (c.numerator) this.subjects.numerator.push(c.subject);
    }
  }

  result(
    base: Omit<MeasureResult, 'populations' | 'score' | 'strata' | 'subjects' | 'measureUrl'>,
  ): MeasureResult {
    const strata = [...this.strata.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([value, populations]) => ({
        stratifier: 'author' as const,
        value,
        populations,
        score: scoreOf(populations),
      }));
    return {
      ...base,
      measureUrl: measureUrl(base.measure),
      populations: { ...this.total },
      score: scoreOf(this.total),
      strata,
      ...(this.subjects ? { subjects: this.subjects } : {}),
    };
  }
}

/** The report as a FHIR R4 MeasureReport: type summary, or subject-list with a contained List per population. */
export function toMeasureReport(result: MeasureResult): MeasureReport {
  const contained: List[] = [];
  const population = (p: Populations, lists: boolean): MeasureReportGroupPopulation[] =>
    POPULATION_NAMES.map((name) => {
      const entry: MeasureReportGroupPopulation = { code: populationCode(name), count: p[name] };
      const subjects = lists ? result.subjects?.[name] : undefined;
      if (subjects) {
        const id = `${name}-subjects`;
        contained.push({
          resourceType: 'List',
          id,
          status: 'current',
          mode: 'snapshot',
          ...(subjects.length
            ? { entry: subjects.map((reference) => ({ item: { reference } })) }
            : {
                emptyReason: {
                  coding: [
                    { system: 'http://terminology.hl7.org/CodeSystem/list-empty-reason', code: 'nilknown' },
                  ],
                },
              }),
        });
        entry.subjectResults = { reference: `#${id}` };
      }
      return entry;
    });
  const score = (value: number | null) => (value === null ? {} : { measureScore: { value } });
  const group = {
    population: population(result.populations, true),
    ...score(result.score),
    stratifier: [
      {
        code: [{ text: 'author' }],
        // FHIR JSON has no empty arrays: an empty population has no strata at all.
        ...(result.strata.length
          ? {
              stratum: result.strata.map((s) => ({
                value: { text: s.value },
                population: population(s.populations, false),
                ...score(s.score),
              })),
            }
          : {}),
      },
    ],
  };
  const counts = POPULATION_NAMES.map((name) => `${name} ${result.populations[name]}`).join(', ');
  const scoreText = result.score === null ? 'no score (empty denominator)' : `score ${result.score}`;
  return {
    resourceType: 'MeasureReport',
    // dom-6 (best practice): a narrative. Only ids, counts and dates: nothing to escape.
    text: {
      status: 'generated',
      div: `<div xmlns="http://www.w3.org/1999/xhtml"><p>${result.measure}, ${result.period.start} to ${result.period.end}${result.patient ? `, ${result.patient}` : ''}: ${scoreText}; ${counts}.</p></div>`,
    },
    ...(contained.length ? { contained } : {}),
    status: 'complete',
    type: result.reportType,
    measure: `${result.measureUrl}|${MEASURE_VERSION}`,
    ...(result.patient ? { subject: { reference: result.patient } } : {}),
    date: result.date,
    period: { start: result.period.start, end: result.period.end },
    group: [group],
  };
}
