// Who may see and change which plans: the patient restriction of patient/ tokens, in one place. A restricted
// caller sees another patient's plan as absent (not found), never as forbidden: no existence oracle.
import type { CarePlan } from 'fhir/r4.js';
import { subjectPatient } from '../auth/caller.js';
import { DomainError } from '../model/errors.js';
import type { PlanContext } from './types.js';

/** The patient (Patient/<id>) the caller is restricted to, if any. */
export function restrictedPatient(context: PlanContext): string | undefined {
  return context.caller?.patient;
}

/** Whether the caller may see this CarePlan. */
export function maySee(context: PlanContext, carePlan: Pick<CarePlan, 'subject'> | undefined): boolean {
  const restricted = restrictedPatient(context);
  return !restricted || subjectPatient(carePlan?.subject?.reference) === restricted;
}

export function hiddenPlan(): DomainError {
  return new DomainError('not-found', 'the care plan (or a part of it) does not exist on the FHIR server', {
    denied: true,
  });
}

/** A plan the caller writes must be for the restricted caller's patient. */
export function requireOwnPatient(context: PlanContext, patient: string | undefined, pointer: string): void {
  const restricted = restrictedPatient(context);
  if (restricted && subjectPatient(patient) !== restricted) {
    throw new DomainError('not-allowed', "a patient token can only write its own patient's plans", {
      errors: [{ pointer, detail: `must be ${restricted}` }],
      denied: true,
    });
  }
}

/** A restricted caller searches its own patient's plans only. */
export function requireOwnSearch(context: PlanContext, patient: string | undefined): void {
  const restricted = restrictedPatient(context);
  if (restricted && subjectPatient(patient) !== restricted) {
    throw new DomainError('not-allowed', "a patient token can only search its own patient's plans", {
      errors: [{ pointer: '/patient', detail: `must be ${restricted}`, in: 'query' }],
      denied: true,
    });
  }
}

/** A restricted caller's change feed holds its patient's plans only. */
export function requireOwnFeed(context: PlanContext, patient: string | undefined): void {
  const restricted = restrictedPatient(context);
  if (restricted && patient && subjectPatient(patient) !== restricted) {
    throw new DomainError('not-allowed', "a patient token can only follow its own patient's plans", {
      denied: true,
    });
  }
}
