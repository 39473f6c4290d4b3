// The mapping as the use cases need it: a plan to a validated transaction, FHIR (validated) to a plan, and the
// write's Provenance. Pure: nothing is sent.
import { randomUUID } from 'node:crypto';
import type { Bundle, Provenance, Resource } from 'fhir/r4.js';
import { callerDisplay, clientDisplay } from '../auth/caller.js';
import { DEFAULT_US_CORE_VERSION, type UsCoreVersion } from '../fhir/mapping/codes.js';
import { type FhirPlanSource, PlanSourceError, planSourceFromFhir } from '../fhir/mapping/from-fhir.js';
import { planFromFhirWithReport } from '../fhir/mapping/not-taken.js';
import { withProvenance } from '../fhir/mapping/provenance.js';
import { planToTransaction, type ToFhirOptions } from '../fhir/mapping/to-fhir.js';
import {
  type FhirValidationIssue,
  validateFhirBundle,
  validateFhirResource,
} from '../fhir/validation/index.js';
import { checkPlanRules, type SharedCarePlan } from '../model/care-plan.js';
import { DomainError, type ErrorDetail } from '../model/errors.js';
import type { PlanContext } from './types.js';

function issuesToErrors(issues: FhirValidationIssue[]): ErrorDetail[] {
  return issues.map((issue) => ({
    pointer: issue.path,
    detail: `${issue.resourceType}${issue.id ? `/${issue.id}` : ''}: ${issue.message} (${issue.rule})`,
    in: 'fhir' as const,
  }));
}

export class PlanFhir {
  /**
   * `serverBase`: the FHIR server the service writes to (PUT entries get their absolute fullUrl there);
   * `newUuid`: the ids of a transaction's new entries; `usCoreVersion`: the US Core version of every profile
   * claimed (US_CORE_VERSION); reading takes the claims of this version as the service's own.
   */
  constructor(
    private readonly serverBase: string | undefined,
    private readonly newUuid: () => string = randomUUID,
    readonly usCoreVersion: UsCoreVersion = DEFAULT_US_CORE_VERSION,
  ) {}

  /** Maps a plan to a transaction Bundle and validates every resource in it. */
  toFhir(plan: SharedCarePlan, options: Omit<ToFhirOptions, 'newUuid'> = {}): Bundle {
    const violations = checkPlanRules(plan);
    if (violations.length) {
      throw new DomainError('unprocessable', 'the parts of the plan do not fit together', {
        errors: violations.map((v) => ({ pointer: v.pointer, detail: v.message })),
      });
    }
    // PUT entries get their absolute fullUrl on the FHIR server the service writes to, unless the caller names
    // another base (the $to-fhir route: the public base).
    const bundle = planToTransaction(plan, {
      serverBase: this.serverBase,
      usCoreVersion: this.usCoreVersion,
      ...options,
      newUuid: this.newUuid,
    });
    const issues = validateFhirBundle(bundle, 'outbound');
    if (issues.length) {
      // Either the service mapped wrongly, or carried elements (unmappedFhir) are not valid FHIR.
      const fromCarried = JSON.stringify(plan).includes('"unmappedFhir"');
      throw new DomainError(
        fromCarried ? 'invalid-fhir' : 'mapping-failed',
        fromCarried
          ? 'the plan maps to invalid FHIR (check its unmappedFhir elements); nothing was sent'
          : 'the service produced FHIR that fails validation; nothing was sent',
        { errors: issuesToErrors(issues) },
      );
    }
    return bundle;
  }

  /** Maps FHIR (a CarePlan with contained resources, or a Bundle) to a plan. */
  fromFhir(input: unknown, carePlanId?: string): SharedCarePlan {
    const isBundle = (input as Resource)?.resourceType === 'Bundle';
    const issues = isBundle ? validateFhirBundle(input, 'inbound') : validateFhirResource(input, 'inbound');
    if (issues.length) {
      throw new DomainError('invalid-fhir', 'the input is not valid FHIR R4', {
        errors: issuesToErrors(issues),
      });
    }
    let source: FhirPlanSource;
    try {
      source = planSourceFromFhir(input as Resource, carePlanId);
    } catch (error) {
      if (error instanceof PlanSourceError) {
        throw new DomainError(
          'unprocessable',
          error.message,
          error.carePlans.length ? { choices: error.carePlans } : {},
        );
      }
      throw error;
    }
    // Nothing is dropped silently: the input resources the plan does not hold are listed, with why.
    const { plan, notTaken } = planFromFhirWithReport(source, this.usCoreVersion);
    return notTaken.length ? { ...plan, notTaken } : plan;
  }

  /**
   * The transaction with the Provenance of the write appended (who: the caller), validated like every outbound
   * resource.
   */
  withProvenance(
    bundle: Bundle,
    context: PlanContext,
    activity: 'CREATE' | 'UPDATE',
    idempotencyTag?: string,
  ): Bundle {
    const caller = context.caller;
    const result = withProvenance(bundle, {
      activity,
      agent: {
        clientId: caller?.clientId,
        display: context.actor ? clientDisplay(caller) : callerDisplay(caller),
        ...(context.actor ? { person: context.actor } : {}),
      },
      recorded: new Date().toISOString(),
      idempotencyTag,
      uuid: this.newUuid(),
      usCoreVersion: this.usCoreVersion,
    });
    const provenance = result.entry?.[result.entry.length - 1]?.resource as Provenance;
    const issues = validateFhirResource(provenance, 'outbound');
    if (issues.length) {
      throw new DomainError('mapping-failed', 'the service produced a Provenance that fails validation', {
        errors: issuesToErrors(issues),
      });
    }
    return result;
  }
}
