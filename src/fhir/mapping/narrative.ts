// The human-readable narrative of a CarePlan (CarePlan.text, status "generated"), built only from the model so
// that the same plan always yields the same narrative.
import type { Reference, SharedCarePlan } from '../../model/care-plan.js';
import { ROLE_LABEL } from './codes.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/**
 * Escapes text for XHTML element content (the narrative has no attributes built from data). Quotes stay as
 * they are: FHIR servers that re-serialise the XHTML (HAPI does) write them unescaped, and the narrative must
 * read back byte for byte to be recognised as the one this service generated.
 */
const SPECIAL = /[&<>]/;

export function escapeXhtml(text: string): string {
  if (!SPECIAL.test(text)) return text; // most text has nothing to escape
  return text.replace(/[&<>]/g, (char) => ESCAPES[char] ?? char);
}

export function referenceLabel(reference: Reference | undefined): string {
  if (!reference) return 'unknown';
  return reference.display ?? reference.reference ?? 'unknown';
}

const list = (items: string[]): string =>
  items.length ? `<ul>${items.map((i) => `<li>${i}</li>`).join('')}</ul>` : '';

export function carePlanNarrative(plan: SharedCarePlan): string {
  const e = escapeXhtml;
  const goalNames = new Map<string, string>();
  for (const goal of plan.goals ?? []) {
    const text = goal.description.text ?? goal.description.coding?.[0]?.display ?? 'goal';
    if (goal.key) goalNames.set(goal.key, text);
    if (goal.id) goalNames.set(goal.id, text);
  }
  const parts: string[] = [];
  parts.push(`<h2>${e(plan.title ?? 'Care plan')}</h2>`);
  parts.push(
    `<p>Care plan for ${e(referenceLabel(plan.patient))}: status ${e(plan.status)}, intent ${e(plan.intent)}` +
      `${plan.period?.start ? `, from ${e(plan.period.start)}` : ''}${plan.period?.end ? ` to ${e(plan.period.end)}` : ''}.</p>`,
  );
  if (plan.description) parts.push(`<p>${e(plan.description)}</p>`);
  if (plan.whatMatters) {
    parts.push(`<h3>What matters to the patient</h3><p>${e(plan.whatMatters.statement)}</p>`);
    parts.push(list((plan.whatMatters.values ?? []).map(e)));
  }
  if (plan.goals?.length) {
    parts.push('<h3>Goals</h3>');
    parts.push(
      list(
        plan.goals.map((goal) => {
          const agreed = (goal.agreements ?? []).map((a) => `${e(referenceLabel(a.who))}: ${e(a.status)}`);
          const due = (goal.targets ?? []).map((t) => t.dueDate).filter((d): d is string => !!d);
          return (
            `${e(goal.description.text ?? goal.description.coding?.[0]?.display ?? 'goal')} (${e(goal.lifecycleStatus)}` +
            `${goal.achievementStatus ? `, ${e(goal.achievementStatus)}` : ''}${due.length ? `, due ${e(due.join(', '))}` : ''})` +
            `${goal.expressedBy ? `; expressed by ${e(referenceLabel(goal.expressedBy))}` : ''}` +
            `${agreed.length ? `; agreement: ${agreed.join(', ')}` : ''}`
          );
        }),
      ),
    );
  }
  if (plan.preferences?.length) {
    parts.push('<h3>Preferences</h3>');
    parts.push(list(plan.preferences.map((p) => e(p.statement))));
  }
  const linked = (goals: string[] | undefined) =>
    goals?.length ? ` (for: ${goals.map((g) => e(goalNames.get(g) ?? g)).join('; ')})` : '';
  if (plan.strengths?.length) {
    parts.push('<h3>Strengths</h3>');
    parts.push(list(plan.strengths.map((s) => `${e(s.statement)}${linked(s.goals)}`)));
  }
  if (plan.barriers?.length) {
    parts.push('<h3>Barriers</h3>');
    parts.push(list(plan.barriers.map((b) => `${e(b.statement)}${linked(b.goals)}`)));
  }
  if (plan.careTeam?.members.length) {
    parts.push(`<h3>Care team${plan.careTeam.name ? `: ${e(plan.careTeam.name)}` : ''}</h3>`);
    parts.push(
      list(
        plan.careTeam.members.map(
          (m) =>
            `${e(referenceLabel(m.member))}${m.role || m.roleText ? `: ${e(m.roleText ?? ROLE_LABEL[m.role ?? 'other'])}` : ''}`,
        ),
      ),
    );
  }
  if (plan.activities?.length) {
    parts.push('<h3>Activities</h3>');
    parts.push(
      list(
        plan.activities.map((a) => {
          if (a.reference) return `See ${e(referenceLabel(a.reference))}`;
          const who = (a.performers ?? []).map((p) => e(referenceLabel(p)));
          const when = a.scheduledText ?? [a.scheduled?.start, a.scheduled?.end].filter(Boolean).join(' to ');
          return (
            `${e(a.description ?? a.code?.text ?? 'activity')} (${e(a.status ?? 'unknown')})` +
            `${who.length ? `; by ${who.join(', ')}` : ''}${when ? `; when: ${e(when)}` : ''}${linked(a.goals)}`
          );
        }),
      ),
    );
  }
  if (plan.decisions?.length) {
    parts.push('<h3>Decisions made together</h3>');
    parts.push(
      list(
        plan.decisions.map(
          (d) =>
            `${e(d.question)} Options: ${d.options.map((o) => e(o.title)).join('; ')}.` +
            `${d.chosenOption ? ` Chosen: ${e(d.chosenOption)}.` : ' Not decided yet.'}` +
            `${d.rationale ? ` Why: ${e(d.rationale)}` : ''}`,
        ),
      ),
    );
  }
  return `<div xmlns="http://www.w3.org/1999/xhtml">${parts.join('')}</div>`;
}
