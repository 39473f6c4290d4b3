// Who may see and change which plans: the patient restriction of patient/ tokens, in one place. A restricted
// caller sees another patient's plan as absent (not found), never as forbidden: no existence oracle.
import type { CarePlan } from 'fhir/r4.js';
import { patientRestriction, seesPlansOneByOne, subjectPatient } from '../auth/caller.js';
import { DomainError } from '../model/errors.js';
import type { PlanContext } from './types.js';

/** The patient (Patient/<id>) the caller is restricted to, if any. */
export function restrictedPatient(context: PlanContext): string | undefined {
  return patientRestriction(context.caller);
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

/**
 * What covers all of a patient's plans at once (`what`: 'a subscription', 'a report') is refused (403) to a family
 * member's token, which sees only the plans whose care team they are on.
 */
export function requireSeesAllPlans(context: PlanContext, what: string): void {
  if (seesPlansOneByOne(context.caller)) {
    throw new DomainError(
      'not-allowed',
      `a family member's token sees only the plans whose care team they are on; ${what} covers all of a patient's plans`,
      { denied: true },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Who may write what: the roles of the callers of one plan, and the one table of what each may do. The README's
// table "Who may do what" is this one; test/http/routes/care-plans/participation-matrix.test.ts tests every cell.

/**
 * The caller's role on one plan. `patient`: the token's fhirUser is the plan's patient. `family`: a patient/ token
 * for the plan's patient whose fhirUser is a RelatedPerson on the plan's care team (and, when the FHIR server
 * holds that RelatedPerson, whose `patient` is the plan's patient). `professional`: fhirUser a Practitioner or
 * PractitionerRole. `client`: no fhirUser (system tokens, AUTH_MODE=none): writes are attributed to the client.
 * Anyone else (a RelatedPerson not on the team, a Patient who is not the plan's) sees no plan at all (404).
 */
export type Role = 'patient' | 'family' | 'professional' | 'client';
export const ROLES: readonly Role[] = ['patient', 'family', 'professional', 'client'];

/** The writes, as the audit log names them (src/http/route-access.ts). */
export type Write =
  | 'create'
  | 'replace'
  | 'end'
  | 'goal-add'
  | 'goal-change'
  | 'goal-remove'
  | 'activity-add'
  | 'activity-change'
  | 'activity-remove'
  | 'agreement'
  | 'agreement-for-another'
  | 'note-add'
  | 'item-add'
  | 'item-change'
  | 'item-remove'
  | 'what-matters-set';

/**
 * `yes`: allowed. `no`: 403. `own`: allowed on what the caller wrote only (ownership.ts): for the patient and family
 * an item is theirs when its `expressedBy` is them (what they add is attributed to them); for a professional, `own`
 * means anything but the words of the patient and family (the text of an item they expressed, its removal).
 * `items`: preferences, strengths and barriers.
 */
export type Permit = 'yes' | 'own' | 'no';

export const WHO_MAY: Readonly<Record<Write, Readonly<Record<Role, Permit>>>> = {
  create: { patient: 'own', family: 'no', professional: 'yes', client: 'yes' },
  replace: { patient: 'own', family: 'own', professional: 'own', client: 'yes' },
  end: { patient: 'own', family: 'no', professional: 'yes', client: 'yes' },
  'goal-add': { patient: 'own', family: 'own', professional: 'yes', client: 'yes' },
  'goal-change': { patient: 'own', family: 'own', professional: 'own', client: 'yes' },
  'goal-remove': { patient: 'own', family: 'own', professional: 'own', client: 'yes' },
  'activity-add': { patient: 'no', family: 'no', professional: 'yes', client: 'yes' },
  'activity-change': { patient: 'own', family: 'own', professional: 'yes', client: 'yes' },
  'activity-remove': { patient: 'no', family: 'no', professional: 'yes', client: 'yes' },
  agreement: { patient: 'yes', family: 'yes', professional: 'yes', client: 'no' },
  'agreement-for-another': { patient: 'no', family: 'no', professional: 'yes', client: 'yes' },
  'note-add': { patient: 'yes', family: 'yes', professional: 'yes', client: 'yes' },
  'item-add': { patient: 'own', family: 'own', professional: 'yes', client: 'yes' },
  'item-change': { patient: 'own', family: 'own', professional: 'own', client: 'yes' },
  'item-remove': { patient: 'own', family: 'own', professional: 'own', client: 'yes' },
  'what-matters-set': { patient: 'own', family: 'own', professional: 'own', client: 'yes' },
};

/** Who writes: the role on this plan, and the person (with a display name) for patient, family and professional. */
export interface Participant {
  role: Role;
  person?: { reference: string; display?: string };
}

/** Refuses a write the table does not allow the role (403); `own` writes are checked further by ownership.ts. */
export function requireAllowed(participant: Participant, write: Write): Permit {
  const permit = WHO_MAY[write][participant.role];
  if (permit === 'no') {
    throw new DomainError('not-allowed', `a ${participant.role} caller may not do this (${write})`, {
      denied: true,
    });
  }
  return permit;
}
