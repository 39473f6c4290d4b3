// What the use cases need to know about a request: its id, and who calls (with any patient restriction).
import type { FastifyRequest } from 'fastify';
import type { PlanContext } from '../care-plans/types.js';

export function callContext(request: FastifyRequest): PlanContext {
  return { requestId: request.id, ...(request.caller ? { caller: request.caller } : {}) };
}
