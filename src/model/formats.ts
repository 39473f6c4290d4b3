// FHIR date and dateTime formats for the API schema. FHIR's regular expressions alone accept 2026-02-30;
// these also check the calendar. Dates are checked as text: never through a JS Date (no time-zone shifts).

const DATE = /^(\d{4})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12]\d|3[01]))?)?$/;
// FHIR R4 dateTime: a date, or a full date with a time that carries a time zone.
const DATE_TIME =
  /^(\d{4})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12]\d|3[01])(?:T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(?:\.\d{1,9})?(?:Z|[+-](?:0\d|1[0-3]):[0-5]\d|[+-]14:00))?)?)?$/;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function realDay(match: RegExpExecArray): boolean {
  const [, year, month, day] = match;
  if (Number(year) === 0) return false;
  return day === undefined || Number(day) <= daysInMonth(Number(year), Number(month));
}

export function isFhirDate(value: string): boolean {
  const match = DATE.exec(value);
  return !!match && realDay(match);
}

export function isFhirDateTime(value: string): boolean {
  const match = DATE_TIME.exec(value);
  return !!match && realDay(match);
}

/** Registers the formats with an AJV instance (the API's body and query validators). */
export const FHIR_FORMATS = {
  'fhir-date': { type: 'string', validate: isFhirDate },
  'fhir-date-time': { type: 'string', validate: isFhirDateTime },
} as const;
