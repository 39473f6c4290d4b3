// Plain words for the plan's codes, dates and measures, as the plan page shows them (no codes, no ids).
import type {
  Activity,
  Barrier,
  CareTeamMember,
  CodeableConcept,
  Goal,
  GoalTarget,
  Quantity,
  SharedCarePlan,
} from '../../model/care-plan.js';

export const PLAN_STATUS: Record<SharedCarePlan['status'], string | undefined> = {
  draft: 'Draft: still being worked out',
  active: 'In use now',
  'on-hold': 'Paused for now',
  revoked: 'Stopped',
  completed: 'Finished',
  'entered-in-error': 'Made by mistake: please do not follow this plan',
  unknown: undefined,
};

export const PLAN_INTENT: Record<SharedCarePlan['intent'], string> = {
  proposal: 'A suggestion, not agreed yet',
  plan: 'Agreed together',
  order: 'Asked for by my care team',
  option: 'One possible plan',
};

export const GOAL_PROGRESS: Record<NonNullable<Goal['achievementStatus']>, string> = {
  'in-progress': 'Under way',
  improving: 'Getting better',
  worsening: 'Getting harder',
  'no-change': 'No change yet',
  achieved: 'Done: goal reached',
  sustaining: 'Keeping it up',
  'not-achieved': 'Not reached',
  'no-progress': 'No progress yet',
  'not-attainable': 'Not possible for now',
};

export const GOAL_STAGE: Record<Goal['lifecycleStatus'], string> = {
  proposed: 'Suggested, not agreed yet',
  planned: 'Planned',
  accepted: 'Agreed',
  active: 'Working on it now',
  'on-hold': 'Paused for now',
  completed: 'Finished',
  cancelled: 'Stopped',
  'entered-in-error': 'Written down by mistake',
  rejected: 'We decided not to do this',
};

export const GOAL_PRIORITY: Record<NonNullable<Goal['priority']>, string> = {
  'high-priority': 'Top priority',
  'medium-priority': 'Important',
  'low-priority': 'When there is time',
};

export const AGREEMENT: Record<'agree' | 'disagree' | 'pending', string> = {
  agree: 'agrees',
  disagree: 'does not agree',
  pending: 'has not decided yet',
};

export const ROLE: Record<NonNullable<CareTeamMember['role']>, string> = {
  patient: 'The person this plan is for',
  caregiver: 'Carer',
  'family-member': 'Family',
  friend: 'Friend',
  physician: 'Doctor',
  nurse: 'Nurse',
  therapist: 'Therapist',
  pharmacist: 'Pharmacist',
  'social-worker': 'Social worker',
  'care-coordinator': 'Care coordinator: keeps everything joined up',
  administrative: 'Helps with appointments and paperwork',
  other: 'Helps with my care',
};

/** A team role in a word or two, after a person's name: "Ana Lopez (carer)". */
export const ROLE_SHORT: Record<NonNullable<CareTeamMember['role']>, string> = {
  patient: '',
  caregiver: 'carer',
  'family-member': 'family',
  friend: 'friend',
  physician: 'doctor',
  nurse: 'nurse',
  therapist: 'therapist',
  pharmacist: 'pharmacist',
  'social-worker': 'social worker',
  'care-coordinator': 'care coordinator',
  administrative: 'clinic staff',
  other: '',
};

export const ACTIVITY_STATUS: Record<NonNullable<Activity['status']>, string | undefined> = {
  'not-started': 'Not started yet',
  scheduled: 'Booked',
  'in-progress': 'Happening now',
  'on-hold': 'Paused for now',
  completed: 'Done',
  cancelled: 'Cancelled',
  stopped: 'Stopped',
  unknown: undefined,
  'entered-in-error': 'Written down by mistake',
};

export const BARRIER_KIND: Record<NonNullable<Barrier['category']>, string> = {
  transportation: 'Getting there',
  cost: 'Money',
  'health-literacy': 'Health information',
  language: 'Language',
  housing: 'Home',
  food: 'Food',
  'caregiver-support': 'Help at home',
  time: 'Time',
  other: 'Other',
};

/** Who a reference names when it has no display: plain words by resource type, never the id. */
export const REFERENCE_KIND: Record<string, string> = {
  Patient: 'Me',
  RelatedPerson: 'Someone close to me',
  Practitioner: 'Someone in my care team',
  PractitionerRole: 'Someone in my care team',
  Organization: 'An organisation that helps me',
  CareTeam: 'My care team',
};

/** Common goal measures in plain words, by LOINC code; other measures keep their own words. */
const PLAIN_MEASURE: Record<string, string> = {
  '4548-4': 'Average blood sugar over about 3 months (HbA1c)',
  '17856-6': 'Average blood sugar over about 3 months (HbA1c)',
  '2345-7': 'Blood sugar',
  '2339-0': 'Blood sugar',
  '85354-9': 'Blood pressure',
  '8480-6': 'Blood pressure, top number',
  '8462-4': 'Blood pressure, bottom number',
  '29463-7': 'Weight',
  '39156-5': 'Body mass index (BMI)',
  '8867-4': 'Heart rate',
  '2093-3': 'Cholesterol',
  '59408-5': 'Oxygen level',
  '2708-6': 'Oxygen level',
};

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** A FHIR date or dateTime as words ("20 November 2026"), on the calendar day it was written (no time zone shift). */
export function plainDate(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const match = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(value);
  if (!match) return undefined;
  const [, year, month, day] = match;
  const monthName = month ? MONTHS[Number(month) - 1] : undefined;
  if (!monthName) return year;
  return day ? `${Number(day)} ${monthName} ${year}` : `${monthName} ${year}`;
}

/** "on 20 November 2026", "in November 2026" or "in 2026". */
export function onDate(value: string | undefined): string | undefined {
  const words = plainDate(value);
  if (!words) return undefined;
  return /^\d{1,2} /.test(words) ? `on ${words}` : `in ${words}`;
}

export function plainPeriod(period: { start?: string; end?: string } | undefined): string | undefined {
  const start = plainDate(period?.start);
  const end = plainDate(period?.end);
  if (start && end) return start === end ? `On ${start}` : `From ${start} to ${end}`;
  if (start) return `From ${start}`;
  if (end) return `Until ${end}`;
  return undefined;
}

export function conceptWords(concept: CodeableConcept | undefined): string | undefined {
  if (!concept) return undefined;
  if (concept.text) return concept.text;
  for (const coding of concept.coding ?? []) {
    if (coding.system === 'http://loinc.org' && coding.code && PLAIN_MEASURE[coding.code]) {
      return PLAIN_MEASURE[coding.code];
    }
  }
  return concept.coding?.find((coding) => coding.display)?.display;
}

function amount(quantity: Quantity): string | undefined {
  if (quantity.value === undefined) return undefined;
  const unit = quantity.unit ?? '';
  const number = String(quantity.value);
  return unit === '' ? number : unit === '%' ? `${number}%` : `${number} ${unit}`;
}

function quantityWords(quantity: Quantity): string | undefined {
  const value = amount(quantity);
  if (!value) return undefined;
  switch (quantity.comparator) {
    case '<':
      return `less than ${value}`;
    case '<=':
      return `${value} or less`;
    case '>=':
      return `${value} or more`;
    case '>':
      return `more than ${value}`;
    default:
      return value;
  }
}

export function targetWords(target: GoalTarget): string | undefined {
  const low = target.range?.low ? amount(target.range.low) : undefined;
  const high = target.range?.high ? amount(target.range.high) : undefined;
  const value =
    target.text ??
    (target.quantity ? quantityWords(target.quantity) : undefined) ??
    (low && high
      ? `between ${low} and ${high}`
      : low
        ? `${low} or more`
        : high
          ? `${high} or less`
          : undefined);
  const measure = conceptWords(target.measure);
  const due = plainDate(target.dueDate);
  // A value of a measure that has no words (only an unknown code) would mean nothing to the reader.
  if (target.measure && !measure) return due ? `By ${due}` : undefined;
  const what = measure && value ? `${measure}: ${value}` : (measure ?? value);
  if (what && due) return `${what}, by ${due}`;
  return what ?? (due ? `By ${due}` : undefined);
}
