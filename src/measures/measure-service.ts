// The measures use case: pages through the CarePlans on the FHIR server (keyset on _lastUpdated, a bounded page at
// a time), reads each page's own parts in one batch (and, for goal-follow-up, the Goals' histories in batches),
// applies the criteria plan by plan and keeps only the counts. Memory holds one page, never the population.
import type { Bundle, CarePlan, Goal as FhirGoal, Resource } from 'fhir/r4.js';
import { patientRestriction, subjectPatient } from '../auth/caller.js';
import { requireSeesAllPlans } from '../care-plans/access.js';
import type { PlanContext } from '../care-plans/types.js';
import type { FhirGateway } from '../fhir/client/gateway.js';
import { planFromFhir, resolverFor } from '../fhir/mapping/from-fhir.js';
import { ownParts, partReferencesOf } from '../fhir/mapping/plan-parts.js';
import { DomainError } from '../model/errors.js';
import {
  casesOf,
  goalsNeedingHistory,
  type MeasurementPeriod,
  type PlanCase,
  planInPeriod,
} from './criteria.js';
import type { MeasureId } from './definitions.js';
import { type MeasureResult, type ReportType, SubjectLimitExceeded, Tally } from './report.js';

export interface ReportRequest {
  measure: MeasureId;
  period: MeasurementPeriod;
  /** Patient/<id>: only that patient's plans. */
  patient?: string;
  reportType: ReportType;
}

export interface MeasureServiceOptions {
  /**
   * CarePlans read per search page. Large: a server may scan and sort every CarePlan for each page (the embedded
   * one does), so fewer pages cost less; servers with a smaller maximum (HAPI: 50) are paged through all the same.
   */
  pageSize?: number;
  /** CarePlans whose parts are read in one batch. */
  partsChunk?: number;
  /** Most subjects a subject-list report lists (per population); more is a 422. */
  maxSubjects?: number;
  /** Goal histories read per batch. */
  historyBatch?: number;
  now?: () => Date;
}

/**
 * The parts each measure reads: a part not read stays a reference in the mapped plan, which the measure does not
 * look at. Goals are read wherever links to goals matter (barriers name the goals they affect).
 */
const PARTS_READ: Record<MeasureId, readonly string[]> = {
  'what-matters-documented': ['Observation'],
  'patient-expressed-goals': ['Goal', 'CareTeam'],
  'goals-agreed-by-patient': ['Goal'],
  'barriers-addressed': ['Goal', 'Observation'],
  'decisions-shared': [],
  'goal-follow-up': ['Goal'],
};

/** Versions of a Goal read for goal-follow-up (its latest ones). */
export const GOAL_HISTORY_VERSIONS = 100;

export class MeasureService {
  /** Tunable after construction (the tests page through a small population in small pages). */
  pageSize: number;
  partsChunk: number;
  maxSubjects: number;
  historyBatch: number;
  private readonly now: () => Date;

  constructor(
    private readonly gateway: FhirGateway,
    options: MeasureServiceOptions = {},
  ) {
    this.pageSize = options.pageSize ?? 1000;
    this.partsChunk = options.partsChunk ?? 100;
    this.maxSubjects = options.maxSubjects ?? 10_000;
    this.historyBatch = options.historyBatch ?? 50;
    this.now = options.now ?? (() => new Date());
  }

  /**
   * A patient token sees its own patient's figures only; another patient's are absent (404), whether or not that
   * patient exists, so the answer tells nothing about other patients.
   */
  checkPatientFilter(request: ReportRequest, context: PlanContext): void {
    requireSeesAllPlans(context, 'a report');
    const restricted = patientRestriction(context.caller);
    if (restricted && request.patient && subjectPatient(request.patient) !== restricted) {
      throw new DomainError('not-found', 'no figures for that patient can be shown to this token', {
        errors: [{ pointer: '/patient', detail: `this token sees ${restricted} only`, in: 'query' }],
        denied: true,
      });
    }
  }

  /** Computes a report; `signal` stops it between pages, `progress` hears how many CarePlans were read. */
  async report(
    request: ReportRequest,
    context: PlanContext,
    watch: { signal?: AbortSignal; progress?: (plansRead: number) => void } = {},
  ): Promise<MeasureResult> {
    this.checkPatientFilter(request, context);
    const patient = patientRestriction(context.caller) ?? request.patient;
    const date = this.now().toISOString();
    const tally = new Tally(request.reportType === 'subject-list', this.maxSubjects);
    let plansRead = 0;
    try {
      for await (const page of this.carePlanPages(patient, date, context)) {
        watch.signal?.throwIfAborted();
        plansRead += page.length;
        watch.progress?.(plansRead);
        const inScope = page.filter(
          (c) =>
            planInPeriod(c, request.period) && (!patient || subjectPatient(c.subject?.reference) === patient),
        );
        if (inScope.length === 0) continue;
        // Parts are read for a chunk of plans at a time: one batch of a bounded size.
        for (let i = 0; i < inScope.length; i += this.partsChunk) {
          const chunk = inScope.slice(i, i + this.partsChunk);
          for (const planCase of await this.planCases(request, chunk, context)) {
            const author = planCase.plan.author?.reference ?? 'none';
            for (const c of casesOf(request.measure, planCase, request.period)) tally.add(c, author);
          }
        }
      }
    } catch (error) {
      if (error instanceof SubjectLimitExceeded) {
        throw new DomainError(
          'unprocessable',
          `a subject-list report lists at most ${error.limit} subjects per population; narrow the period, filter by patient, or ask for a summary`,
          { errors: [{ pointer: '/reportType', detail: 'too many subjects to list', in: 'query' }] },
        );
      }
      throw error;
    }
    return tally.result({
      measure: request.measure,
      period: request.period,
      ...(patient ? { patient } : {}),
      date,
      reportType: request.reportType,
    });
  }

  /** The plans of one chunk with the parts the measure reads (and Goal histories where goal-follow-up needs them). */
  private async planCases(
    request: ReportRequest,
    carePlans: CarePlan[],
    context: PlanContext,
  ): Promise<PlanCase[]> {
    const types = PARTS_READ[request.measure];
    const wantedParts = carePlans.flatMap(partReferencesOf).filter((r) => types.includes(r.split('/')[0]));
    const found = wantedParts.length
      ? await this.gateway.readMany(wantedParts, context)
      : new Map<string, Resource>();
    const cases = carePlans.map((carePlan): PlanCase => {
      const parts = ownParts(carePlan, found);
      const plan = planFromFhir({ carePlan, resolve: resolverFor(carePlan, parts) });
      const goals = new Map<string, FhirGoal>();
      for (const resource of parts.values())
        if (resource.resourceType === 'Goal' && resource.id) goals.set(resource.id, resource as FhirGoal);
      return { carePlan, plan, goals };
    });
    if (request.measure !== 'goal-follow-up') return cases;
    const wanted = cases.flatMap((c) => goalsNeedingHistory(c, request.period).map((id) => `Goal/${id}`));
    const histories = new Map<string, Bundle>();
    for (let i = 0; i < wanted.length; i += this.historyBatch) {
      const batch = await this.gateway.historyMany(
        wanted.slice(i, i + this.historyBatch),
        GOAL_HISTORY_VERSIONS,
        context,
      );
      for (const [reference, history] of batch) histories.set(reference.slice('Goal/'.length), history);
    }
    return cases.map((c) => ({ ...c, goalHistories: histories }));
  }

  /**
   * The CarePlans as they were last changed up to `asOf`, a page at a time, oldest change first: a keyset on
   * meta.lastUpdated (the last time seen and the ids seen at it), so it works on servers without paging links and
   * holds one page. A plan changed after `asOf` is left to the next report.
   */
  private async *carePlanPages(
    patient: string | undefined,
    asOf: string,
    context: PlanContext,
  ): AsyncGenerator<CarePlan[]> {
    const until = Date.parse(asOf);
    let position: { t: string; seen: string[] } | undefined;
    for (;;) {
      const seen = new Set(position?.seen ?? []);
      const params: Record<string, string | string[]> = {
        _sort: '_lastUpdated',
        _count: String(this.pageSize + seen.size),
        _lastUpdated: position?.t ? [`ge${position.t}`, `le${asOf}`] : `le${asOf}`,
      };
      if (patient) params.subject = patient;
      const bundle = await this.gateway.search('CarePlan', params, context);
      const carePlans = (bundle.entry ?? [])
        .map((e) => e.resource as CarePlan)
        .filter(
          (c) =>
            c?.resourceType === 'CarePlan' &&
            !!c.meta?.lastUpdated &&
            Date.parse(c.meta.lastUpdated) <= until,
        )
        .filter((c) => !(c.meta?.lastUpdated === position?.t && seen.has(c.id as string)));
      if (carePlans.length === 0) return;
      yield carePlans;
      const last = carePlans[carePlans.length - 1].meta?.lastUpdated as string;
      const tied = carePlans.filter((c) => c.meta?.lastUpdated === last).map((c) => c.id as string);
      position = { t: last, seen: last === position?.t ? [...seen, ...tied] : tied };
    }
  }
}
