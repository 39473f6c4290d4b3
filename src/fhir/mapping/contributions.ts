// Who wrote what on a Goal, both ways: progress notes (Goal.note: text, authorReference, time) and the
// `contribution` extension (this project's: schemas/fhir/StructureDefinition-contribution.json), which says who
// recorded the goal or a person's agreement with it, when, and the note given with an agreement (the core
// goal-acceptance extension has only individual, status and priority). Pure; the recognisers take a value only
// when the builder makes exactly that value again, so nothing is lost on the way back.
import type { Annotation, Extension } from 'fhir/r4.js';
import type { Goal, GoalAgreement, GoalNote, Reference } from '../../model/care-plan.js';
import { jsonEqual } from './carry.js';
import { EXTENSION } from './codes.js';
import { text, wholeReference } from './read-helpers.js';

interface Recorded {
  individual?: Reference;
  recordedBy?: Reference;
  recordedOn?: string;
  note?: string;
}

function contribution(recorded: Recorded): Extension | undefined {
  const parts: Extension[] = [
    ...(recorded.individual ? [{ url: 'individual', valueReference: { ...recorded.individual } }] : []),
    ...(recorded.recordedBy ? [{ url: 'recorder', valueReference: { ...recorded.recordedBy } }] : []),
    ...(recorded.recordedOn ? [{ url: 'recorded', valueDateTime: recorded.recordedOn }] : []),
    ...(recorded.note ? [{ url: 'note', valueString: recorded.note }] : []),
  ];
  // Only an individual: nothing to say beyond the goal-acceptance extension.
  if (parts.length === (recorded.individual ? 1 : 0)) return undefined;
  return { url: EXTENSION.contribution, extension: parts };
}

/** The contribution extensions of a goal: its own record first, then one per agreement that has more to say. */
export function contributionExtensions(goal: Goal): Extension[] {
  const own = contribution({ recordedBy: goal.recordedBy, recordedOn: goal.recordedOn });
  const agreements = (goal.agreements ?? []).map((a) =>
    contribution({ individual: a.who, recordedBy: a.recordedBy, recordedOn: a.recordedOn, note: a.note }),
  );
  return [own, ...agreements].filter((e): e is Extension => e !== undefined);
}

function recordedFrom(extension: Extension): Recorded | undefined {
  const recorded: Recorded = {};
  for (const part of extension.extension ?? []) {
    const key = { individual: 'individual', recorder: 'recordedBy', recorded: 'recordedOn', note: 'note' }[
      part.url
    ] as keyof Recorded | undefined;
    if (!key || recorded[key] !== undefined) return undefined;
    const value =
      key === 'recordedOn'
        ? part.valueDateTime
        : key === 'note'
          ? text(part.valueString)
          : wholeReference(part.valueReference);
    if (value === undefined) return undefined;
    (recorded as Record<string, unknown>)[key] = value;
  }
  return jsonEqual(contribution(recorded), extension) ? recorded : undefined;
}

/**
 * Takes the goal's contribution extensions into the goal and its agreements (which must be read already): the
 * goal's own record (no individual), and one per agreement of exactly one individual. Returns the extensions it
 * could not take, which stay carried.
 */
export function takeContributions(goal: Goal, extensions: Extension[]): Extension[] {
  const left: Extension[] = [];
  const agreementOf = (who: Reference): GoalAgreement | undefined => {
    const matching = (goal.agreements ?? []).filter((a) => jsonEqual(a.who, who));
    return matching.length === 1 ? matching[0] : undefined;
  };
  for (const extension of extensions) {
    const recorded = recordedFrom(extension);
    const target = recorded?.individual ? agreementOf(recorded.individual) : goal;
    const free =
      target &&
      target.recordedBy === undefined &&
      target.recordedOn === undefined &&
      (!recorded?.individual || (target as GoalAgreement).note === undefined) &&
      (recorded?.individual || recorded?.note === undefined);
    if (!recorded || !target || !free) {
      left.push(extension);
      continue;
    }
    const { individual: _who, ...rest } = recorded;
    Object.assign(target, rest);
  }
  return left;
}

export function noteAnnotation(note: GoalNote): Annotation {
  return {
    ...(note.author ? { authorReference: { ...note.author } } : {}),
    time: note.time,
    text: note.text,
  };
}

/**
 * The notes of a goal when every Annotation is one noteAnnotation makes again (text, time, an authorReference or
 * none); otherwise none (all carried).
 */
export function notesFromAnnotations(annotations: unknown): GoalNote[] | undefined {
  if (!Array.isArray(annotations) || annotations.length === 0) return undefined;
  const notes: GoalNote[] = [];
  for (const annotation of annotations as Annotation[]) {
    // The service always writes a time: an annotation without one is someone else's, carried as it came.
    const noteText = text(annotation?.text);
    if (!noteText || typeof annotation.time !== 'string') return undefined;
    const author = annotation.authorReference ? wholeReference(annotation.authorReference) : undefined;
    const note: GoalNote = { text: noteText, ...(author ? { author } : {}), time: annotation.time };
    if (!jsonEqual(noteAnnotation(note), annotation)) return undefined;
    notes.push(note);
  }
  return notes;
}
