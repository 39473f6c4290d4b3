// The care plan model: types generated from schemas/care-plan.schema.json, plus the rules a JSON Schema
// cannot express (links between parts of one plan).
export type {
  Activity,
  Barrier,
  CareTeam,
  CareTeamMember,
  CodeableConcept,
  Coding,
  Goal,
  GoalAgreement,
  GoalNote,
  GoalTarget,
  NotTaken,
  Period,
  Preference,
  Quantity,
  Reference,
  SharedCarePlan,
  SharedDecision,
  Strength,
  WhatMatters,
} from './care-plan.generated.js';

import type { GoalTarget, SharedCarePlan } from './care-plan.generated.js';

export interface PlanRuleViolation {
  /** JSON pointer into the plan. */
  pointer: string;
  message: string;
}

type RangeEnd = NonNullable<NonNullable<GoalTarget['range']>['low']>;

/**
 * FHIR R4 rng-2 (https://hl7.org/fhir/R4/datatypes.html#Range): "low.empty() or high.empty() or (low <= high)".
 * FHIRPath compares two quantities only in comparable units (https://hl7.org/fhirpath/N1/#comparison); ends it
 * cannot compare fail the invariant. So with both ends: a value each, the same unit, and low not above high.
 */
function rangeProblem(range: NonNullable<GoalTarget['range']>): string | undefined {
  const { low, high } = range;
  if (!low || !high) return undefined;
  if (low.value === undefined || high.value === undefined) return 'both ends of a range need a value';
  const unitOf = (end: RangeEnd) =>
    end.code !== undefined ? `${end.system}|${end.code}` : `unit:${end.unit ?? ''}`;
  if (unitOf(low) !== unitOf(high)) {
    return 'the ends of a range must be in the same unit (the same system and code, or without code the same unit)';
  }
  if (low.value > high.value) return 'the low end of a range is above its high end';
  return undefined;
}

/** Rules between parts of a plan: unique goal names, links that resolve, a chosen option that exists. */
export function checkPlanRules(plan: SharedCarePlan): PlanRuleViolation[] {
  const violations: PlanRuleViolation[] = [];
  const names = new Set<string>();
  const goalNameUsed = (name: string, index: number) =>
    violations.push({ pointer: `/goals/${index}`, message: `goal name "${name}" is used by another goal` });
  (plan.goals ?? []).forEach(({ key, id }, index) => {
    // a goal may carry one name as both key and id; another goal may use neither
    if (key !== undefined && names.has(key)) goalNameUsed(key, index);
    if (id !== undefined && id !== key && names.has(id)) goalNameUsed(id, index);
    if (key !== undefined) names.add(key);
    if (id !== undefined) names.add(id);
  });
  const checkLinks = (section: 'activities' | 'barriers' | 'strengths') => {
    (plan[section] ?? []).forEach((item, index) => {
      (item.goals ?? []).forEach((link, linkIndex) => {
        if (!names.has(link)) {
          violations.push({
            pointer: `/${section}/${index}/goals/${linkIndex}`,
            message: `"${link}" is not the key or id of a goal in this plan`,
          });
        }
      });
    });
  };
  checkLinks('activities');
  checkLinks('barriers');
  checkLinks('strengths');
  const activityIds = new Set<string>();
  (plan.activities ?? []).forEach((activity, index) => {
    if (activity.id === undefined) return;
    if (activityIds.has(activity.id)) {
      violations.push({
        pointer: `/activities/${index}/id`,
        message: `activity id "${activity.id}" is used twice`,
      });
    }
    activityIds.add(activity.id);
  });
  (plan.decisions ?? []).forEach((decision, index) => {
    if (
      decision.chosenOption !== undefined &&
      !decision.options.some((o) => o.title === decision.chosenOption)
    ) {
      violations.push({
        pointer: `/decisions/${index}/chosenOption`,
        message: `"${decision.chosenOption}" is not the title of one of the options`,
      });
    }
  });
  (plan.goals ?? []).forEach((goal, goalIndex) => {
    (goal.targets ?? []).forEach((target, targetIndex) => {
      const problem = target.range && rangeProblem(target.range);
      if (problem)
        violations.push({ pointer: `/goals/${goalIndex}/targets/${targetIndex}/range`, message: problem });
    });
  });
  if (
    plan.period?.start &&
    plan.period.end &&
    plan.period.start.slice(0, 10) > plan.period.end.slice(0, 10)
  ) {
    violations.push({ pointer: '/period', message: 'the period ends before it starts' });
  }
  return violations;
}
