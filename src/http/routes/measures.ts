// /measures: the quality-improvement measures (definitions in src/measures/definitions.ts) and their reports.
// Thin: parse, check the period, call the MeasureService, answer JSON or a FHIR MeasureReport.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FHIR_ID_PATTERN } from '../../fhir/fhir-id.js';
import { MEASURES, type MeasureId, measureUrl, STRATIFIERS } from '../../measures/definitions.js';
import type { ReportRequest } from '../../measures/measure-service.js';
import { type MeasureResult, type ReportType, toMeasureReport } from '../../measures/report.js';
import { jobOwner, TooManyJobs } from '../../measures/report-jobs.js';
import { callContext } from '../call-context.js';
import { ApiProblem } from '../problems.js';
import { problemResponses, problems } from './responses.js';

const populationsSchema = {
  type: 'object',
  required: ['initialPopulation', 'denominator', 'denominatorExclusion', 'numerator'],
  properties: {
    initialPopulation: { type: 'integer', minimum: 0 },
    denominator: { type: 'integer', minimum: 0 },
    denominatorExclusion: { type: 'integer', minimum: 0 },
    numerator: { type: 'integer', minimum: 0 },
  },
} as const;
const score = {
  type: 'number',
  nullable: true,
  minimum: 0,
  maximum: 1,
  description:
    'numerator / (denominator - denominatorExclusion); null when that is 0 (no score, never a division by zero).',
} as const;
const subjectLists = {
  type: 'object',
  description:
    'reportType=subject-list: the resources in each population (CarePlan/id, Goal/id, Observation/id).',
  properties: Object.fromEntries(
    ['initialPopulation', 'denominator', 'denominatorExclusion', 'numerator'].map((name) => [
      name,
      { type: 'array', items: { type: 'string' } },
    ]),
  ),
} as const;

const reportExample = {
  measure: 'goals-agreed-by-patient',
  measureUrl: measureUrl('goals-agreed-by-patient'),
  period: { start: '2026-01-01', end: '2026-12-31' },
  date: '2026-12-01T09:00:00.000Z',
  reportType: 'summary',
  populations: { initialPopulation: 120, denominator: 120, denominatorExclusion: 8, numerator: 84 },
  score: 0.75,
  strata: [
    {
      stratifier: 'author',
      value: 'Organization/riverside-clinic',
      populations: { initialPopulation: 70, denominator: 70, denominatorExclusion: 6, numerator: 56 },
      score: 0.875,
    },
    {
      stratifier: 'author',
      value: 'Practitioner/dr-okafor',
      populations: { initialPopulation: 50, denominator: 50, denominatorExclusion: 2, numerator: 28 },
      score: 0.5833333333333334,
    },
  ],
};

const reportSchema = {
  type: 'object',
  required: ['measure', 'measureUrl', 'period', 'date', 'reportType', 'populations', 'score', 'strata'],
  properties: {
    measure: { type: 'string' },
    measureUrl: { type: 'string' },
    period: {
      type: 'object',
      required: ['start', 'end'],
      properties: { start: { type: 'string' }, end: { type: 'string' } },
    },
    patient: { type: 'string', description: 'Set when the report is for one patient.' },
    date: {
      type: 'string',
      description: 'When the computation started; plans changed later count in the next report.',
    },
    reportType: { type: 'string', enum: ['summary', 'subject-list'] },
    populations: populationsSchema,
    score,
    strata: {
      type: 'array',
      items: {
        type: 'object',
        required: ['stratifier', 'value', 'populations', 'score'],
        properties: {
          stratifier: { type: 'string', enum: Object.keys(STRATIFIERS) },
          value: {
            type: 'string',
            description: 'The author reference, "none", or "(other)" past 1,000 authors.',
          },
          populations: populationsSchema,
          score,
        },
      },
    },
    subjects: subjectLists,
  },
  example: reportExample,
} as const;

const measureListSchema = {
  type: 'object',
  required: ['items'],
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'url', 'title', 'description', 'unit', 'criteria', 'fhir'],
        properties: {
          id: { type: 'string' },
          url: { type: 'string', description: 'The canonical URL of its FHIR Measure.' },
          title: { type: 'string' },
          description: { type: 'string' },
          unit: {
            type: 'string',
            enum: ['plan', 'goal', 'barrier', 'decision'],
            description: 'What one case is.',
          },
          criteria: populationsTextSchema(),
          basedOn: { type: 'string' },
          fhir: { type: 'string', description: 'Where this service serves the FHIR Measure.' },
        },
      },
    },
  },
} as const;

function populationsTextSchema() {
  return {
    type: 'object',
    required: ['initialPopulation', 'denominator', 'denominatorExclusion', 'numerator'],
    properties: {
      initialPopulation: { type: 'string' },
      denominator: { type: 'string' },
      denominatorExclusion: { type: 'string' },
      numerator: { type: 'string' },
    },
  } as const;
}

type ReportQuery = { periodStart: string; periodEnd: string; patient?: string; reportType: ReportType };

const reportAnswer = (description: string) => ({
  description,
  content: {
    'application/json': { schema: reportSchema },
    'application/fhir+json': { schema: { $ref: 'FhirResource#' } },
  },
});

const jobParams = {
  type: 'object',
  required: ['jobId'],
  properties: {
    jobId: {
      type: 'string',
      pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
      description: 'From the Content-Location of the 202.',
    },
  },
} as const;

/** The report as JSON, or as a FHIR MeasureReport when the Accept header prefers application/fhir+json. */
function sendReport(request: FastifyRequest, reply: FastifyReply, result: MeasureResult) {
  reply.header('vary', 'Accept');
  if (/application\/fhir\+json/.test(request.answerType)) {
    return reply.type('application/fhir+json').send(toMeasureReport(result));
  }
  return reply.type('application/json').send(result);
}

/** Prefer: respond-async (RFC 7240), among other preferences. */
const wantsAsync = (prefer: string | undefined) =>
  !!prefer?.split(',').some((p) => p.split(';')[0].trim().toLowerCase() === 'respond-async');

export default async function measureRoutes(app: FastifyInstance) {
  app.get(
    '/measures',
    {
      schema: {
        tags: ['measures'],
        operationId: 'listMeasures',
        summary: 'The quality-improvement measures and their definitions',
        description:
          'Each is a proportion over the plans active in a period; each is also a FHIR Measure at /fhir/Measure/{id} ' +
          '(public: definitions, no data).',
        response: {
          200: {
            description: 'The measures',
            content: { 'application/json': { schema: measureListSchema } },
          },
        },
      },
    },
    async () => ({
      items: MEASURES.map((m) => ({
        id: m.id,
        url: measureUrl(m.id),
        title: m.title,
        description: m.description,
        unit: m.unit,
        criteria: {
          initialPopulation: m.initialPopulation,
          denominator: m.denominator,
          denominatorExclusion: m.denominatorExclusion,
          numerator: m.numerator,
        },
        ...(m.basedOn ? { basedOn: m.basedOn } : {}),
        fhir: `/fhir/Measure/${m.id}`,
      })),
    }),
  );

  app.get<{ Params: { id: MeasureId }; Querystring: ReportQuery; Headers: { prefer?: string } }>(
    '/measures/:id/report',
    {
      schema: {
        tags: ['measures'],
        operationId: 'reportMeasure',
        summary: 'A measure over the plans active in a period: counts, score, strata',
        description:
          'Pages through the plans on the FHIR server (memory stays flat). Needs a user/ or system/ scope that allows ' +
          "search of CarePlan (s); a patient/ token gets its own patient's figures only (another patient's filter is a " +
          '404). Accept: application/fhir+json gives a FHIR MeasureReport (type summary, or subject-list with a List of ' +
          'the resources in each population). Prefer: respond-async answers 202 at once (FHIR asynchronous pattern). ' +
          'The measures (numerator; README "Quality measures" and GET /fhir/Measure/{id} have every population):\n\n' +
          MEASURES.map((m) => `- \`${m.id}\` (a case is a ${m.unit}): ${m.numerator}`).join('\n'),
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', enum: MEASURES.map((m) => m.id) } },
        },
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['periodStart', 'periodEnd'],
          properties: {
            periodStart: {
              type: 'string',
              format: 'fhir-date',
              pattern: '^\\d{4}-\\d{2}-\\d{2}$',
              description: 'First day of the measurement period (YYYY-MM-DD).',
              example: '2026-01-01',
            },
            periodEnd: {
              type: 'string',
              format: 'fhir-date',
              pattern: '^\\d{4}-\\d{2}-\\d{2}$',
              description: 'Last day of the measurement period (YYYY-MM-DD), on or after periodStart.',
              example: '2026-12-31',
            },
            patient: {
              type: 'string',
              pattern: `^Patient/${FHIR_ID_PATTERN}$`,
              description: "Patient/<id>: that patient's plans only.",
            },
            reportType: { type: 'string', enum: ['summary', 'subject-list'], default: 'summary' },
          },
        },
        headers: {
          type: 'object',
          properties: {
            prefer: {
              type: 'string',
              maxLength: 200,
              description:
                'respond-async: answer 202 at once, with the status URL in Content-Location (FHIR asynchronous pattern).',
            },
          },
        },
        response: {
          200: reportAnswer('The report'),
          202: {
            description: 'Prefer: respond-async: the report is being computed; poll the Content-Location.',
            headers: { 'Content-Location': { type: 'string', description: '/measures/report-jobs/{jobId}' } },
            type: 'null',
          },
          ...problems(400, 404, 422, 502, 503, 504),
          429: {
            ...problemResponses[429],
            description:
              'Too many requests from this client, or too many reports being computed on this instance; retry after Retry-After.',
          },
        },
      },
    },
    async (request, reply) => {
      const { periodStart, periodEnd, patient, reportType } = request.query;
      if (periodStart > periodEnd) {
        // 422, not 400: each date is valid on its own; only together they make no period (beyond JSON Schema).
        throw new ApiProblem('unprocessable', 'the period ends before it starts', {
          errors: [
            {
              pointer: '/periodEnd',
              detail: `must be on or after periodStart (${periodStart})`,
              in: 'query',
            },
          ],
        });
      }
      const reportRequest: ReportRequest = {
        measure: request.params.id,
        period: { start: periodStart, end: periodEnd },
        ...(patient ? { patient } : {}),
        reportType,
      };
      const context = callContext(request);
      try {
        if (!wantsAsync(request.headers.prefer)) {
          const result = await app.measureJobs.runInline(() => app.measures.report(reportRequest, context));
          return sendReport(request, reply, result);
        }
        // The patient check answers at once (404), not later from the job.
        app.measures.checkPatientFilter(reportRequest, context);
        const jobId = app.measureJobs.start(jobOwner(context.caller), (signal, progress) =>
          app.measures.report(reportRequest, context, { signal, progress }),
        );
        return reply.code(202).header('content-location', `/measures/report-jobs/${jobId}`).send();
      } catch (error) {
        if (!(error instanceof TooManyJobs)) throw error;
        throw new ApiProblem('too-many-requests', `${error.message}; retry later`, {
          headers: { 'retry-after': '10' },
        });
      }
    },
  );

  app.get<{ Params: { jobId: string } }>(
    '/measures/report-jobs/:jobId',
    {
      schema: {
        tags: ['measures'],
        operationId: 'readMeasureReportJob',
        summary: 'The status of a report asked for with Prefer: respond-async, then the report',
        description:
          '202 with X-Progress and Retry-After while it is computed; then 200 with the report (JSON, or a FHIR ' +
          'MeasureReport with Accept: application/fhir+json), or the problem that stopped it. Only the caller that ' +
          'asked for the report can read it; it is kept 10 minutes after it ends, on the instance that computes it.',
        params: jobParams,
        response: {
          200: reportAnswer('The report'),
          202: {
            description: 'Still being computed',
            headers: {
              'X-Progress': { type: 'string', description: 'How many plans were read so far.' },
              'Retry-After': { type: 'string', description: 'Seconds to wait before asking again.' },
            },
            type: 'null',
          },
          ...problems(400, 404, 422, 502, 503, 504),
        },
      },
    },
    async (request, reply) => {
      const job = app.measureJobs.get(jobOwner(callContext(request).caller), request.params.jobId);
      if (!job) throw new ApiProblem('not-found', 'no such report job (it may have expired)');
      if (job.state === 'failed') throw job.error;
      if (job.state === 'running') {
        return reply
          .code(202)
          .header('x-progress', `${job.plansRead} plans read`)
          .header('retry-after', '2')
          .send();
      }
      return sendReport(request, reply, job.result);
    },
  );

  app.delete<{ Params: { jobId: string } }>(
    '/measures/report-jobs/:jobId',
    {
      schema: {
        tags: ['measures'],
        operationId: 'cancelMeasureReportJob',
        summary: 'Cancel a report asked for with Prefer: respond-async (or forget its answer)',
        params: jobParams,
        response: { 202: { description: 'Cancelled', type: 'null' }, ...problems(400, 404) },
      },
    },
    async (request, reply) => {
      if (!app.measureJobs.cancel(jobOwner(callContext(request).caller), request.params.jobId))
        throw new ApiProblem('not-found', 'no such report job (it may have expired)');
      return reply.code(202).send();
    },
  );
}
