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
  GoalTarget,
  Period,
  Preference,
  Quantity,
  Reference,
  SharedCarePlan,
  SharedDecision,
  Strength,
  WhatMatters,
} from './care-plan.generated.js';

import type { SharedCarePlan } from './care-plan.generated.js';

export interface PlanRuleViolation {
  /** JSON pointer into the plan. */
  pointer: string;
  message: string;
}

/** Rules between parts of a plan: unique goal names, links that resolve, a chosen option that exists. */
export function checkPlanRules(plan: SharedCarePlan): PlanRuleViolation[] {
  const violations: PlanRuleViolation[] = [];
  const names = new Set<string>();
  (plan.goals ?? []).forEach((goal, index) => {
    for (const name of [goal.key, goal.id]) {
      if (name === undefined) continue;
      if (names.has(name) && !(name === goal.id && name === goal.key)) {
        violations.push({
          pointer: `/goals/${index}`,
          message: `goal name "${name}" is used by another goal`,
        });
      }
    }
    for (const name of new Set([goal.key, goal.id])) if (name !== undefined) names.add(name);
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
  if (
    plan.period?.start &&
    plan.period.end &&
    plan.period.start.slice(0, 10) > plan.period.end.slice(0, 10)
  ) {
    violations.push({ pointer: '/period', message: 'the period ends before it starts' });
  }
  return violations;
}
