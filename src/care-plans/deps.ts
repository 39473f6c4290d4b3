// What every care plan use case works with: the repository, the mapping, and the service's settings.
import type { PlanFhir } from './plan-fhir.js';
import type { PlanRepository } from './repository.js';
import type { PlanSchemaCheck } from './types.js';

export interface UseCaseDeps {
  repository: PlanRepository;
  mapping: PlanFhir;
  newUuid: () => string;
  /** The change feed holds back changes younger than this (ms). */
  settleMs: number;
  checkSchema: PlanSchemaCheck;
}
