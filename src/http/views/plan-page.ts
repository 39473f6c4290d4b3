// The plan as a printable, plain-language HTML page for patients and families: what matters to me, my goals and
// how they are going, my care team, what happens next, the decisions we made together, what helps and what gets
// in the way. No codes, no FHIR ids, no scripts, no external resources; everything from data is escaped.
import type { Activity, Goal, Reference, SharedCarePlan, SharedDecision } from '../../model/care-plan.js';
import { badge, bulletList, empty, facts, Html, html, paragraphs, section } from './html.js';
import {
  ACTIVITY_STATUS,
  AGREEMENT,
  BARRIER_KIND,
  conceptWords,
  GOAL_PRIORITY,
  GOAL_PROGRESS,
  GOAL_STAGE,
  onDate,
  PLAN_INTENT,
  PLAN_STATUS,
  plainDate,
  plainPeriod,
  REFERENCE_KIND,
  ROLE,
  ROLE_SHORT,
  targetWords,
} from './plain-words.js';
import { META_CSP, STYLE } from './plan-page-style.js';

export { PLAN_PAGE_CSP } from './plan-page-style.js';

interface Context {
  plan: SharedCarePlan;
  /** Names known for references anywhere in the plan, so a bare reference can still be named. */
  names: Map<string, string>;
  /** Goal texts by goal key and id, for links from activities, strengths and barriers. */
  goalNames: Map<string, string>;
}

function collectNames(plan: SharedCarePlan): Map<string, string> {
  const names = new Map<string, string>();
  const add = (ref: Reference | undefined) => {
    if (ref?.reference && ref.display && !names.has(ref.reference)) names.set(ref.reference, ref.display);
  };
  add(plan.patient);
  for (const member of plan.careTeam?.members ?? []) add(member.member);
  add(plan.author);
  for (const ref of plan.contributors ?? []) add(ref);
  add(plan.whatMatters?.expressedBy);
  for (const goal of plan.goals ?? []) {
    add(goal.expressedBy);
    add(goal.recordedBy);
    for (const agreement of goal.agreements ?? []) add(agreement.who);
    for (const note of goal.notes ?? []) add(note.author);
  }
  for (const preference of plan.preferences ?? []) add(preference.expressedBy);
  for (const item of [...(plan.strengths ?? []), ...(plan.barriers ?? [])]) add(item.expressedBy);
  for (const activity of plan.activities ?? []) for (const ref of activity.performers ?? []) add(ref);
  for (const decision of plan.decisions ?? []) for (const ref of decision.participants ?? []) add(ref);
  return names;
}

function goalText(goal: Goal): string {
  return goal.description.text ?? conceptWords(goal.description) ?? 'A goal we set together';
}

function personName(context: Context, ref: Reference | undefined): string | undefined {
  if (!ref) return undefined;
  if (ref.display) return ref.display;
  const known = ref.reference ? context.names.get(ref.reference) : undefined;
  if (known) return known;
  const type = ref.reference?.match(/^([A-Z][A-Za-z]+)\//)?.[1] ?? ref.type?.match(/([A-Z][A-Za-z]+)$/)?.[1];
  return (type && REFERENCE_KIND[type]) || 'Someone in my care team';
}

function listOfNames(context: Context, refs: readonly Reference[] | undefined): string | undefined {
  const names = [...new Set((refs ?? []).map((ref) => personName(context, ref) as string))];
  if (names.length === 0) return undefined;
  if (names.length === 1) return names[0];
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** A person's name with their place in the team in a few words: "Ana Lopez (daughter)". */
function nameWithRole(context: Context, ref: Reference): string {
  const name = personName(context, ref) as string;
  const member = ref.reference
    ? context.plan.careTeam?.members.find((m) => m.member.reference === ref.reference)
    : undefined;
  // The team's own words for the role when they are short ("Daughter; drives Maria..." -> "daughter").
  const words = member?.roleText?.split(/[;,]/)[0].trim().toLowerCase();
  const role = (words && words.length <= 30 ? words : '') || (member?.role ? ROLE_SHORT[member.role] : '');
  return role && !name.toLowerCase().includes(role) ? `${name} (${role})` : name;
}

/** "Said by Ana Lopez (daughter) on 3 December 2026": who wrote something and when, in plain words. */
function saidBy(
  context: Context,
  by: Reference | undefined,
  on: string | undefined,
  verb = 'Said',
): string | undefined {
  if (!by && !on) return undefined;
  return [verb, by ? `by ${nameWithRole(context, by)}` : undefined, onDate(on)].filter(Boolean).join(' ');
}

function linkedGoals(context: Context, links: readonly string[] | undefined): string[] {
  const texts = (links ?? []).map((link) => context.goalNames.get(link)).filter((text) => text !== undefined);
  return [...new Set(texts)];
}

function renderHeader(context: Context): Html {
  const { plan } = context;
  const patient = personName(context, plan.patient);
  const status = PLAN_STATUS[plan.status];
  const tone = plan.status === 'active' || plan.status === 'completed' ? 'good' : 'warn';
  const made = onDate(plan.created);
  const author = plan.author ? personName(context, plan.author) : undefined;
  const helpers = listOfNames(context, plan.contributors);
  const madeWords = [
    made ? `Made ${made}` : 'Made',
    author ? `by ${author}` : undefined,
    helpers ? `with ${helpers}` : undefined,
  ]
    .filter((words) => words !== undefined)
    .join(' ');
  return html`<header class="plan-header">
<p class="kicker">${patient && patient !== 'Me' ? `Care plan for ${patient}` : 'My care plan'}</p>
<h1>${plan.title ?? 'My care plan'}</h1>
<p class="badges">${badge(status, plan.status === 'unknown' ? 'plain' : tone)} ${badge(PLAN_INTENT[plan.intent], plan.intent === 'plan' ? 'good' : 'plain')}</p>
${plan.description ? paragraphs(plan.description, 'lead') : ''}
${facts([
  ['When', plainPeriod(plan.period)],
  ['Who made it', made || author || helpers ? `${madeWords}.` : undefined],
])}
</header>`;
}

function renderWhatMatters(context: Context): Html {
  const { whatMatters, preferences = [] } = context.plan;
  const care = preferences.filter((preference) => preference.kind === 'care-experience');
  const treatment = preferences.filter((preference) => preference.kind === 'treatment-intervention');
  const said = whatMatters ? saidBy(context, whatMatters.expressedBy, whatMatters.recordedOn) : undefined;
  const preferenceList = (items: typeof preferences) =>
    bulletList(
      items.map((preference) => {
        const who = saidBy(context, preference.expressedBy, preference.recordedOn);
        return html`${paragraphs(preference.statement)}${who ? html`<p class="by">${who}</p>` : ''}`;
      }),
      'bullets roomy',
    );
  const body = html`${
    whatMatters
      ? html`<blockquote class="quote">${paragraphs(whatMatters.statement)}${
          said ? html`<footer class="by">${said}</footer>` : ''
        }</blockquote>`
      : empty('Not written down yet. Tell your care team what matters most to you.')
  }
${whatMatters?.values?.length ? html`<h3>What I value</h3>${bulletList(whatMatters.values, 'chips')}` : ''}
${care.length ? html`<h3>How I like to be cared for</h3>${preferenceList(care)}` : ''}
${treatment.length ? html`<h3>My wishes about treatment</h3>${preferenceList(treatment)}` : ''}`;
  return section('what-matters', 'What matters to me', body);
}

function renderGoal(context: Context, goal: Goal): Html {
  const progress = goal.achievementStatus ? GOAL_PROGRESS[goal.achievementStatus] : undefined;
  const progressTone =
    goal.achievementStatus && ['improving', 'achieved', 'sustaining'].includes(goal.achievementStatus)
      ? 'good'
      : goal.achievementStatus &&
          ['worsening', 'not-achieved', 'no-progress', 'not-attainable'].includes(goal.achievementStatus)
        ? 'warn'
        : 'plain';
  const targets = (goal.targets ?? []).map(targetWords).filter((words) => words !== undefined);
  const agreements = (goal.agreements ?? []).map((agreement) => {
    const recorded = agreement.recordedBy
      ? saidBy(context, agreement.recordedBy, agreement.recordedOn, 'as told to and written down')
      : onDate(agreement.recordedOn);
    return html`<span class="agree-${agreement.status}">${nameWithRole(context, agreement.who)} ${AGREEMENT[agreement.status]}</span>${
      agreement.note ? html`: “${agreement.note}”` : ''
    }${recorded ? html` <span class="by">(${recorded})</span>` : ''}`;
  });
  const whose = [
    saidBy(context, goal.expressedBy, goal.recordedBy ? undefined : goal.recordedOn),
    goal.recordedBy ? saidBy(context, goal.recordedBy, goal.recordedOn, 'written down') : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  // A goal's notes in the order they were written.
  const notes = (goal.notes ?? []).map(
    (note) =>
      html`${paragraphs(note.text)}<p class="by">${saidBy(context, note.author, note.time, 'Written')}</p>`,
  );
  return html`<article class="card goal">
<h3>${goalText(goal)}</h3>
${facts([
  ['How it is going', progress ? badge(progress, progressTone) : undefined],
  [
    'Where it stands',
    progress && goal.lifecycleStatus === 'active' ? undefined : GOAL_STAGE[goal.lifecycleStatus],
  ],
  ['How important', goal.priority ? GOAL_PRIORITY[goal.priority] : undefined],
  ['What we aim for', targets.length === 1 ? targets[0] : targets.length ? bulletList(targets) : undefined],
  ['Started', plainDate(goal.startDate)],
  ['Whose words', whose || undefined],
  ['Who agreed', agreements.length ? bulletList(agreements, 'plain') : undefined],
  [
    'Notes on how it is going',
    notes.length ? html`<ol class="notes">${notes.map((n) => html`<li>${n}</li>`)}</ol>` : undefined,
  ],
])}
</article>`;
}

function renderGoals(context: Context): Html {
  const goals = context.plan.goals ?? [];
  return section(
    'goals',
    'My goals',
    goals.length
      ? html`<p class="hint">What I want to achieve, and how it is going.</p>${goals.map((goal) => renderGoal(context, goal))}`
      : empty('No goals written down yet.'),
  );
}

function renderTeam(context: Context): Html {
  const team = context.plan.careTeam;
  const members = team?.members ?? [];
  const body = members.length
    ? html`${team?.name ? html`<p class="hint">${team.name}${team.status === 'inactive' || team.status === 'suspended' ? ' (not active now)' : ''}</p>` : ''}
<ul class="team">${members.map((member) => {
        const role = member.role ? ROLE[member.role] : undefined;
        return html`<li class="card person"><span class="name">${personName(context, member.member)}</span>${
          role ? html`<span class="role">${role}</span>` : ''
        }${member.roleText ? html`<span class="role-text">${member.roleText}</span>` : ''}</li>`;
      })}</ul>`
    : empty('Nobody is listed yet.');
  return section('team', 'My care team', body);
}

function activityTitle(activity: Activity): string {
  return (
    activity.description ??
    conceptWords(activity.code) ??
    activity.reference?.display ??
    (activity.reference ? 'Something arranged by my care team' : 'Something we agreed to do')
  );
}

const LATER_LAST: Record<string, number> = { completed: 1, cancelled: 2, stopped: 2, 'entered-in-error': 3 };

function renderActivities(context: Context): Html {
  const activities = [...(context.plan.activities ?? [])].sort(
    (a, b) => (LATER_LAST[a.status ?? ''] ?? 0) - (LATER_LAST[b.status ?? ''] ?? 0),
  );
  const body = activities.length
    ? html`<ol class="steps">${activities.map((activity) => {
        const status = activity.status ? ACTIVITY_STATUS[activity.status] : undefined;
        const tone = activity.status === 'completed' || activity.status === 'in-progress' ? 'good' : 'plain';
        const goals = linkedGoals(context, activity.goals);
        return html`<li class="card step"><h3>${activityTitle(activity)}</h3>${facts([
          ['Now', status ? badge(status, tone) : undefined],
          ['Who', listOfNames(context, activity.performers)],
          [
            'When',
            activity.scheduledText ??
              plainPeriod(activity.scheduled) ??
              (activity.status ? 'To be arranged' : undefined),
          ],
          ['Helps with', goals.length === 1 ? goals[0] : goals.length ? bulletList(goals) : undefined],
        ])}</li>`;
      })}</ol>`
    : empty('Nothing planned yet.');
  return section('next', 'What happens next', body);
}

function renderDecision(context: Context, decision: SharedDecision): Html {
  const chosen = decision.chosenOption;
  const options = decision.options.map((option) => {
    const isChosen = option.title === chosen;
    return html`<li class="option${isChosen ? ' chosen' : ''}">
<p class="option-title">${isChosen ? html`<span class="badge good">Our choice</span> ` : ''}${option.title}</p>
${option.pros?.length ? html`<p class="label">Good things</p>${bulletList(option.pros, 'bullets pros')}` : ''}
${option.cons?.length ? html`<p class="label">Things to weigh up</p>${bulletList(option.cons, 'bullets cons')}` : ''}
</li>`;
  });
  return html`<article class="card decision">
<h3>${decision.question}</h3>
<p class="label">The choices we talked about</p>
<ul class="options">${options}</ul>
${facts([
  ['What we chose', chosen ?? badge('Not decided yet', 'warn')],
  ['Why', decision.rationale ? paragraphs(decision.rationale) : undefined],
  ['Who took part', listOfNames(context, decision.participants)],
  ['When', plainDate(decision.decidedOn)],
])}
</article>`;
}

function renderDecisions(context: Context): Html {
  const decisions = context.plan.decisions ?? [];
  return section(
    'decisions',
    'Decisions we made together',
    decisions.length
      ? html`${decisions.map((decision) => renderDecision(context, decision))}`
      : empty('No decisions written down yet.'),
  );
}

function renderHelps(context: Context): Html | undefined {
  const { strengths = [], barriers = [] } = context.plan;
  if (strengths.length === 0 && barriers.length === 0) return undefined;
  const forGoals = (label: string, links: readonly string[] | undefined) => {
    const goals = linkedGoals(context, links);
    return goals.length ? html`<span class="for">${label} ${goals.join('; ')}</span>` : '';
  };
  const byLine = (by: Reference | undefined, on: string | undefined) => {
    const said = saidBy(context, by, on);
    return said ? html`<span class="by">${said}</span>` : '';
  };
  const body = html`<div class="two">
${
  strengths.length
    ? html`<div><h3>What helps me</h3>${bulletList(
        strengths.map(
          (strength) =>
            html`${strength.statement}${forGoals('Helps with:', strength.goals)}${byLine(strength.expressedBy, strength.recordedOn)}`,
        ),
        'bullets roomy helps',
      )}</div>`
    : ''
}
${
  barriers.length
    ? html`<div><h3>What makes things harder</h3>${bulletList(
        barriers.map(
          (barrier) =>
            html`${barrier.category ? html`<span class="kind">${BARRIER_KIND[barrier.category]}:</span> ` : ''}${
              barrier.statement
            }${forGoals('Gets in the way of:', barrier.goals)}${byLine(barrier.expressedBy, barrier.recordedOn)}`,
        ),
        'bullets roomy hard',
      )}</div>`
    : ''
}
</div>`;
  return section('helps', 'What helps and what gets in the way', body);
}

/**
 * The whole plan as a printable, plain-language HTML5 page (lang="en", responsive, print stylesheet, no scripts).
 * Pure: the same plan gives the same page.
 */
export function renderPlanPage(plan: SharedCarePlan): string {
  const goalNames = new Map<string, string>();
  for (const goal of plan.goals ?? []) {
    for (const name of [goal.key, goal.id]) if (name !== undefined) goalNames.set(name, goalText(goal));
  }
  const context: Context = { plan, names: collectNames(plan), goalNames };
  const patient = personName(context, plan.patient);
  const title = `${plan.title ?? 'My care plan'}${patient && patient !== 'Me' ? ` (${patient})` : ''}`;
  const helps = renderHelps(context);
  const updated = onDate(plan.lastUpdated);
  const toc: [string, string][] = [
    ['what-matters', 'What matters to me'],
    ['goals', 'My goals'],
    ['team', 'My care team'],
    ['next', 'What happens next'],
    ['decisions', 'Decisions'],
    ...(helps ? [['helps', 'What helps'] as [string, string]] : []),
  ];
  const page = html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${META_CSP}">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<meta name="color-scheme" content="light">
<link rel="icon" href="data:,">
<title>${title}</title>
<style>${new Html(STYLE)}</style>
</head>
<body>
<div class="page">
${renderHeader(context)}
<nav class="toc" aria-label="On this page"><ul>${toc.map(([id, label]) => html`<li><a href="#${id}">${label}</a></li>`)}</ul></nav>
<main>
${renderWhatMatters(context)}
${renderGoals(context)}
${renderTeam(context)}
${renderActivities(context)}
${renderDecisions(context)}
${helps}
</main>
<footer class="page-footer">
<p>${updated ? `Last changed ${updated}. ` : ''}If something here is wrong or has changed, tell your care team. Bring this page to your next visit.</p>
</footer>
</div>
</body>
</html>
`;
  return page.value;
}

/**
 * Content negotiation for GET /care-plans/{id}: true when the Accept header ranks text/html above both
 * application/json and application/fhir+json (by q-value, then by how specifically each is named), as browsers
 * send it. `*\/*`, a missing header or a tie keep JSON.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = accept.split(',').map((range) => {
    const [type = '', ...params] = range.split(';').map((piece) => piece.trim().toLowerCase());
    const q = params.find((param) => param.startsWith('q='));
    const quality = q ? Number(q.slice(2)) : 1;
    return { type, quality: Number.isFinite(quality) ? quality : 0 };
  });
  const rank = (mediaType: string): [number, number] => {
    const [major] = mediaType.split('/');
    let best: [number, number] = [0, -1];
    for (const { type, quality } of ranges) {
      const specificity = type === mediaType ? 2 : type === `${major}/*` ? 1 : type === '*/*' ? 0 : -1;
      if (specificity > best[1]) best = [quality, specificity];
    }
    return best;
  };
  const html = rank('text/html');
  if (html[0] <= 0) return false;
  const beats = (other: [number, number]) =>
    html[0] > other[0] || (html[0] === other[0] && html[1] > other[1]);
  return beats(rank('application/json')) && beats(rank('application/fhir+json'));
}
