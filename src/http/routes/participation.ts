// Taking part in a plan: agreements with goals, notes on their progress, preferences, strengths and barriers one
// at a time, what matters. Thin: the use cases (app.carePlans: contributions.ts) decide who may, and attribute.
// The additive ones take no If-Match (the service applies them to the current version, again on a conflict);
// an If-Match that is sent is honoured. Every answer carries the new ETag.
import type { FastifyInstance } from 'fastify';
import type { ItemList } from '../../care-plans/contributions.js';
import type { Barrier, Goal, GoalAgreement, Preference, Reference, Strength } from '../../model/care-plan.js';
import {
  editContext,
  editHeaders,
  idempotencyKeyHeader,
  ifMatchOf,
  partParams,
  planResponse,
  sendPlan,
  type Versioned,
} from './care-plans.js';
import { planIdParams, problems } from './responses.js';

const optionalIfMatch = {
  type: 'object',
  properties: {
    'if-match': {
      type: 'string',
      minLength: 1,
      maxLength: 1000,
      description:
        'Optional: the ETag the contribution is based on (412 when stale). Without it the contribution applies to ' +
        'the current version of the plan, whoever wrote last.',
    },
    'idempotency-key': idempotencyKeyHeader,
  },
} as const;
const goalParams = partParams('goalId');
const itemParams = partParams('itemId');

const errors = (withBody: boolean, versioned: boolean) =>
  problems(
    400,
    403,
    404,
    412,
    422,
    ...(versioned ? ([428] as const) : []),
    ...(withBody ? ([413, 415] as const) : []),
    502,
    503,
    504,
  );

const agreementBody = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: {
    status: { type: 'string', enum: ['agree', 'disagree', 'pending'] },
    note: { $ref: 'LongText#' },
    who: {
      $ref: 'Reference#',
      description:
        "Whose agreement: the caller's own when absent. A professional may name the person who said it in person " +
        '(kept as recorded by the professional); a client without a person (fhirUser) must name one.',
    },
  },
  // With `who`, so that they work as they are without a person's token (AUTH_MODE=none, a system client); with a
  // token naming a person, leave `who` out to record your own.
  examples: [
    {
      status: 'agree',
      note: 'Yes, walking to the market is what I want.',
      who: { reference: 'Patient/maria-lopez', display: 'Maria Lopez' },
    },
    {
      status: 'disagree',
      note: 'Saturdays are too soon; start with Sundays.',
      who: { reference: 'RelatedPerson/ana-lopez', display: 'Ana Lopez' },
    },
  ],
} as const;

const noteBody = {
  type: 'object',
  additionalProperties: false,
  required: ['text'],
  properties: {
    text: { $ref: 'LongText#' },
    achievementStatus: { $ref: 'GoalAchievementStatus#' },
    author: {
      $ref: 'Reference#',
      description:
        'Only a client without a person (fhirUser) names the author; a person writes as themselves.',
    },
  },
  examples: [{ text: 'Walked halfway to the market with Ana today.', achievementStatus: 'improving' }],
} as const;

const whatMattersBody = {
  type: 'object',
  additionalProperties: false,
  required: ['statement'],
  properties: {
    statement: { $ref: 'LongText#' },
    values: { type: 'array', maxItems: 50, items: { $ref: 'Text#' } },
    expressedBy: {
      $ref: 'Reference#',
      description:
        'Only a client without a person (fhirUser) names who said it; a person speaks for themselves.',
    },
  },
  examples: [
    {
      statement: 'Staying in my own home, and cooking with my daughter.',
      values: ['independence', 'family'],
    },
  ],
} as const;

const ITEM_EXAMPLES: Record<ItemList, unknown> = {
  preferences: { kind: 'care-experience', statement: 'Please call in the morning, not after 6 pm.' },
  strengths: { statement: 'My neighbour walks with me on Tuesdays.' },
  barriers: { statement: 'The stairs at the clinic are hard for me.', category: 'other' },
};
const ITEM_SCHEMA: Record<ItemList, string> = {
  preferences: 'Preference',
  strengths: 'Strength',
  barriers: 'Barrier',
};

export default async function participationRoutes(app: FastifyInstance) {
  type GoalRoute = Versioned & { Params: { id: string; goalId: string } };

  app.post<GoalRoute & { Body: { status: GoalAgreement['status']; note?: string; who?: Reference } }>(
    '/care-plans/:id/goals/:goalId/agreements',
    {
      schema: {
        tags: ['taking part'],
        operationId: 'recordAgreement',
        summary: "Record the caller's agreement with a goal (agree, disagree, pending)",
        description:
          "The caller's own agreement, replacing their earlier one; attributed to the token's fhirUser (goal-acceptance " +
          '`individual`). No If-Match needed.',
        headers: optionalIfMatch,
        params: goalParams,
        body: agreementBody,
        response: { 200: planResponse('The plan with the agreement'), ...errors(true, false) },
      },
    },
    async (request, reply) =>
      sendPlan(
        reply,
        await app.carePlans.agree(
          request.params.id,
          request.params.goalId,
          request.body,
          ifMatchOf(request),
          editContext(request),
        ),
      ),
  );

  app.post<
    GoalRoute & { Body: { text: string; achievementStatus?: Goal['achievementStatus']; author?: Reference } }
  >(
    '/care-plans/:id/goals/:goalId/notes',
    {
      schema: {
        tags: ['taking part'],
        operationId: 'addGoalNote',
        summary: "A note on a goal's progress, in the caller's words",
        description:
          "Goal.note with the caller as authorReference and the time; with `achievementStatus` the goal's status " +
          'changes too. No If-Match needed.',
        headers: optionalIfMatch,
        params: goalParams,
        body: noteBody,
        response: { 201: planResponse('The plan with the note'), ...errors(true, false) },
      },
    },
    async (request, reply) =>
      sendPlan(
        reply,
        await app.carePlans.addNote(
          request.params.id,
          request.params.goalId,
          request.body,
          ifMatchOf(request),
          editContext(request),
        ),
        201,
      ),
  );

  app.put<Versioned & { Body: { statement: string; values?: string[]; expressedBy?: Reference } }>(
    '/care-plans/:id/what-matters',
    {
      schema: {
        tags: ['taking part'],
        operationId: 'setWhatMatters',
        summary: 'Say what matters, in your own words',
        description:
          "Sets the plan's what-matters statement: a new one, or the caller's own changed (someone else's is theirs: " +
          '403). No If-Match needed.',
        headers: optionalIfMatch,
        params: planIdParams,
        body: whatMattersBody,
        response: { 200: planResponse('The plan with what matters'), ...errors(true, false) },
      },
    },
    async (request, reply) =>
      sendPlan(
        reply,
        await app.carePlans.setWhatMatters(
          request.params.id,
          request.body,
          ifMatchOf(request),
          editContext(request),
        ),
      ),
  );

  for (const list of ['preferences', 'strengths', 'barriers'] as const) {
    const schema = ITEM_SCHEMA[list];
    const one = schema.toLowerCase();
    type ItemRoute = Versioned & { Params: { id: string; itemId: string } };
    app.post<Versioned & { Body: Preference & Strength & Barrier }>(
      `/care-plans/:id/${list}`,
      {
        schema: {
          tags: ['taking part'],
          operationId: `add${schema}`,
          summary: `Add a ${one}, in the caller's words`,
          description: `Attributed to the caller (expressedBy, recordedOn). No If-Match needed.`,
          headers: optionalIfMatch,
          params: planIdParams,
          body: { type: 'object', allOf: [{ $ref: `${schema}#` }], examples: [ITEM_EXAMPLES[list]] },
          response: { 201: planResponse(`The plan with the new ${one}`), ...errors(true, false) },
        },
      },
      async (request, reply) => {
        const stored = await app.carePlans.addItem(
          request.params.id,
          list,
          request.body,
          ifMatchOf(request),
          editContext(request),
        );
        const added = (stored.plan[list] ?? []).at(-1) as { id?: string } | undefined;
        return sendPlan(
          reply.header('location', `/care-plans/${stored.plan.id}/${list}/${added?.id}`),
          stored,
          201,
        );
      },
    );
    app.patch<ItemRoute & { Body: Partial<Preference & Strength & Barrier> }>(
      `/care-plans/:id/${list}/:itemId`,
      {
        schema: {
          tags: ['taking part'],
          operationId: `change${schema}`,
          summary: `Change a ${one} (your own; version-checked)`,
          headers: editHeaders,
          params: itemParams,
          body: { $ref: `${schema}Patch#` },
          response: { 200: planResponse('The plan after the change'), ...errors(true, true) },
        },
      },
      async (request, reply) =>
        sendPlan(
          reply,
          await app.carePlans.changeItem(
            request.params.id,
            list,
            request.params.itemId,
            request.body,
            ifMatchOf(request),
            editContext(request),
          ),
        ),
    );
    app.delete<ItemRoute>(
      `/care-plans/:id/${list}/:itemId`,
      {
        schema: {
          tags: ['taking part'],
          operationId: `remove${schema}`,
          summary: `Remove a ${one} (your own; version-checked)`,
          headers: editHeaders,
          params: itemParams,
          response: { 200: planResponse('The plan after the change'), ...errors(false, true) },
        },
      },
      async (request, reply) =>
        sendPlan(
          reply,
          await app.carePlans.removeItem(
            request.params.id,
            list,
            request.params.itemId,
            ifMatchOf(request),
            editContext(request),
          ),
        ),
    );
  }
}
