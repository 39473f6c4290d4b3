// The plan as a printable, plain-language HTML page for patients and families: what matters to me, my goals and
// how they are going, my care team, what happens next, the decisions we made together, what helps and what gets
// in the way. No codes, no FHIR ids, no scripts, no external resources; everything from data is escaped.
import { createHash } from 'node:crypto';
import type {
  Activity,
  Barrier,
  CareTeamMember,
  CodeableConcept,
  Goal,
  GoalTarget,
  Quantity,
  Reference,
  SharedCarePlan,
  SharedDecision,
} from '../../model/care-plan.js';

// ---------------------------------------------------------------------------------------------------------------
// Safe HTML: a tagged template that escapes every interpolated value unless it is already Html.

/** A fragment of HTML that is safe to insert as it is (built only by the `html` tag below). */
class Html {
  constructor(readonly value: string) {}
}

type Part = Html | string | number | undefined | readonly Part[];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]);
}

function partToHtml(part: Part): string {
  if (part instanceof Html) return part.value;
  if (Array.isArray(part)) return part.map(partToHtml).join('');
  if (part === undefined) return '';
  return escapeHtml(String(part));
}

function html(strings: TemplateStringsArray, ...parts: Part[]): Html {
  let out = strings[0];
  parts.forEach((part, index) => {
    out += partToHtml(part) + strings[index + 1];
  });
  return new Html(out);
}

// ---------------------------------------------------------------------------------------------------------------
// Plain words for the plan's codes.

const PLAN_STATUS: Record<SharedCarePlan['status'], string | undefined> = {
  draft: 'Draft: still being worked out',
  active: 'In use now',
  'on-hold': 'Paused for now',
  revoked: 'Stopped',
  completed: 'Finished',
  'entered-in-error': 'Made by mistake: please do not follow this plan',
  unknown: undefined,
};

const PLAN_INTENT: Record<SharedCarePlan['intent'], string> = {
  proposal: 'A suggestion, not agreed yet',
  plan: 'Agreed together',
  order: 'Asked for by my care team',
  option: 'One possible plan',
};

const GOAL_PROGRESS: Record<NonNullable<Goal['achievementStatus']>, string> = {
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

const GOAL_STAGE: Record<Goal['lifecycleStatus'], string> = {
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

const GOAL_PRIORITY: Record<NonNullable<Goal['priority']>, string> = {
  'high-priority': 'Top priority',
  'medium-priority': 'Important',
  'low-priority': 'When there is time',
};

const AGREEMENT: Record<'agree' | 'disagree' | 'pending', string> = {
  agree: 'agrees',
  disagree: 'does not agree',
  pending: 'has not decided yet',
};

const ROLE: Record<NonNullable<CareTeamMember['role']>, string> = {
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

const ACTIVITY_STATUS: Record<NonNullable<Activity['status']>, string | undefined> = {
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

const BARRIER_KIND: Record<NonNullable<Barrier['category']>, string> = {
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
const REFERENCE_KIND: Record<string, string> = {
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
function onDate(value: string | undefined): string | undefined {
  const words = plainDate(value);
  if (!words) return undefined;
  return /^\d{1,2} /.test(words) ? `on ${words}` : `in ${words}`;
}

function plainPeriod(period: { start?: string; end?: string } | undefined): string | undefined {
  const start = plainDate(period?.start);
  const end = plainDate(period?.end);
  if (start && end) return start === end ? `On ${start}` : `From ${start} to ${end}`;
  if (start) return `From ${start}`;
  if (end) return `Until ${end}`;
  return undefined;
}

function conceptWords(concept: CodeableConcept | undefined): string | undefined {
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

function targetWords(target: GoalTarget): string | undefined {
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

// ---------------------------------------------------------------------------------------------------------------
// The page.

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
    for (const agreement of goal.agreements ?? []) add(agreement.who);
  }
  for (const preference of plan.preferences ?? []) add(preference.expressedBy);
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

function linkedGoals(context: Context, links: readonly string[] | undefined): string[] {
  const texts = (links ?? []).map((link) => context.goalNames.get(link)).filter((text) => text !== undefined);
  return [...new Set(texts)];
}

/** Long text as paragraphs: blank lines separate paragraphs, single line breaks are kept. */
function paragraphs(text: string, className?: string): Html {
  const blocks = text
    .split(/\r?\n\s*\r?\n/)
    .map((block) => block.trim())
    .filter((block) => block !== '');
  return html`${blocks.map(
    (block) =>
      html`<p${className ? html` class="${className}"` : ''}>${block
        .split(/\r?\n/)
        .map((line, index) => (index === 0 ? html`${line}` : html`<br>${line}`))}</p>`,
  )}`;
}

function facts(rows: [string, Part | undefined][]): Html {
  const shown = rows.filter(([, value]) => value !== undefined && value !== '');
  if (shown.length === 0) return html``;
  return html`<dl class="facts">${shown.map(([term, value]) => html`<dt>${term}</dt><dd>${value}</dd>`)}</dl>`;
}

function bulletList(items: readonly Part[], className = 'bullets'): Html {
  return html`<ul class="${className}">${items.map((item) => html`<li>${item}</li>`)}</ul>`;
}

function badge(text: string | undefined, tone: 'plain' | 'good' | 'warn' = 'plain'): Html {
  return text ? html`<span class="badge ${tone}">${text}</span>` : html``;
}

function empty(text: string): Html {
  return html`<p class="empty">${text}</p>`;
}

function section(id: string, title: string, body: Html): Html {
  return html`<section aria-labelledby="${id}"><h2 id="${id}">${title}</h2>${body}</section>`;
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
  const said = whatMatters
    ? [personName(context, whatMatters.expressedBy), plainDate(whatMatters.recordedOn)]
    : [undefined, undefined];
  const preferenceList = (items: typeof preferences) =>
    bulletList(
      items.map((preference) => {
        const who = preference.expressedBy ? personName(context, preference.expressedBy) : undefined;
        return html`${paragraphs(preference.statement)}${who ? html`<p class="by">Said by ${who}</p>` : ''}`;
      }),
      'bullets roomy',
    );
  const body = html`${
    whatMatters
      ? html`<blockquote class="quote">${paragraphs(whatMatters.statement)}${
          said[0] || said[1]
            ? html`<footer class="by">${said[0]}${said[0] && said[1] ? ', ' : ''}${said[1]}</footer>`
            : ''
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
  const agreements = (goal.agreements ?? []).map(
    (agreement) =>
      html`<span class="agree-${agreement.status}">${personName(context, agreement.who)} ${AGREEMENT[agreement.status]}</span>`,
  );
  const whose = personName(context, goal.expressedBy);
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
  ['Whose words', whose],
  ['Who agreed', agreements.length ? bulletList(agreements, 'plain') : undefined],
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
  const body = html`<div class="two">
${
  strengths.length
    ? html`<div><h3>What helps me</h3>${bulletList(
        strengths.map((strength) => html`${strength.statement}${forGoals('Helps with:', strength.goals)}`),
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
            }${forGoals('Gets in the way of:', barrier.goals)}`,
        ),
        'bullets roomy hard',
      )}</div>`
    : ''
}
</div>`;
  return section('helps', 'What helps and what gets in the way', body);
}

const STYLE = `
:root{color-scheme:light;--ink:#1b1b1b;--muted:#4a4a4a;--accent:#0b4f8a;--line:#c5d0db;--soft:#eef4fa;
--good:#0b5a2a;--good-bg:#e3f3e8;--good-line:#8cc7a0;--warn:#7a3b00;--warn-bg:#fdf0e0;--warn-line:#e8b77c}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:#fff;color:var(--ink);font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",
"Helvetica Neue",Arial,sans-serif;font-size:1.125rem;line-height:1.6;overflow-wrap:anywhere}
.page{max-width:48rem;margin:0 auto;padding:1rem 1rem 2.5rem}
a{color:var(--accent)}
a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.plan-header{border-bottom:4px solid var(--accent);padding-bottom:.75rem}
.kicker{margin:0;font-weight:700;color:var(--muted);text-transform:uppercase;letter-spacing:.04em;font-size:.9rem}
h1{margin:.2rem 0 .6rem;font-size:1.85rem;line-height:1.2;color:var(--accent)}
h2{margin:2.2rem 0 .8rem;padding-bottom:.3rem;font-size:1.45rem;line-height:1.25;border-bottom:2px solid var(--line)}
h3{margin:0 0 .5rem;font-size:1.18rem;line-height:1.3}
p{margin:0 0 .6rem}
.lead{font-size:1.15rem}
.hint,.by,.empty{color:var(--muted)}
.empty{font-style:italic}
.badges{margin:.2rem 0 .8rem;display:flex;flex-wrap:wrap;gap:.4rem}
.badge{display:inline-block;padding:.05rem .6rem;border:1px solid var(--line);border-radius:1rem;background:var(--soft);
font-size:.95rem;font-weight:600;line-height:1.5}
.badge.good{background:var(--good-bg);border-color:var(--good-line);color:var(--good)}
.badge.warn{background:var(--warn-bg);border-color:var(--warn-line);color:var(--warn)}
nav.toc{margin:1rem 0 0}
nav.toc ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.4rem}
nav.toc a{display:inline-block;padding:.3rem .7rem;border:1px solid var(--line);border-radius:.4rem;text-decoration:none;
font-size:1rem}
nav.toc a:hover{background:var(--soft)}
.card{border:1px solid var(--line);border-radius:.6rem;padding:.9rem 1rem;margin:0 0 1rem;background:#fff}
.quote{margin:0 0 1.2rem;padding:.9rem 1.1rem;border-left:6px solid var(--accent);background:var(--soft);
border-radius:0 .6rem .6rem 0;font-size:1.3rem;line-height:1.5}
.quote p{margin:0 0 .4rem}
.quote .by{display:block;font-size:1rem}
.quote .by::before{content:"— "}
dl.facts{margin:0;display:grid;grid-template-columns:1fr;gap:0 1rem}
dl.facts dt{font-weight:700;color:var(--muted);font-size:1rem}
dl.facts dd{margin:0 0 .55rem}
dl.facts dd p:last-child,dl.facts dd ul{margin-bottom:0}
.bullets{margin:0 0 .6rem;padding-left:1.3rem}
.bullets.roomy li{margin-bottom:.5rem}
.bullets.roomy p{margin:0}
.chips{list-style:none;margin:0 0 1rem;padding:0;display:flex;flex-wrap:wrap;gap:.45rem}
.chips li{padding:.15rem .75rem;border:1px solid var(--line);border-radius:1rem;background:var(--soft)}
.agree-agree::before{content:"✓ ";color:var(--good);font-weight:700}
.agree-disagree::before{content:"✗ ";color:var(--warn);font-weight:700}
.agree-pending::before{content:"… ";color:var(--muted);font-weight:700}
.team,.steps,.options{list-style:none;margin:0;padding:0}
.team{display:grid;grid-template-columns:1fr;gap:.6rem}
.team .card{margin:0;padding:.6rem .9rem}
.person .name{display:block;font-weight:700}
.person .role,.person .role-text{display:block}
.person .role-text{color:var(--muted);font-size:1rem}
.steps{counter-reset:step}
.step{position:relative;padding-left:3.2rem}
.step::before{counter-increment:step;content:counter(step);position:absolute;left:.9rem;top:.85rem;width:1.7rem;
height:1.7rem;border-radius:50%;background:var(--accent);color:#fff;font-weight:700;text-align:center;line-height:1.7rem;
font-size:1rem}
.label{margin:.3rem 0 .2rem;font-weight:700;color:var(--muted);font-size:1rem}
.options{display:grid;grid-template-columns:1fr;gap:.6rem;margin-bottom:.9rem}
.option{border:1px solid var(--line);border-radius:.5rem;padding:.6rem .9rem}
.option.chosen{border:3px solid var(--good);background:var(--good-bg)}
.option-title{font-weight:700;margin-bottom:.2rem}
.option-title .badge{display:table;margin-bottom:.3rem}
.plain{list-style:none;margin:0;padding:0}
.pros li::marker{content:"+  ";color:var(--good);font-weight:700}
.cons li::marker{content:"−  ";color:var(--warn);font-weight:700}
.kind{font-weight:700}
.for{display:block;color:var(--muted);font-size:1rem}
.two{display:grid;grid-template-columns:1fr;gap:0 1.5rem}
.page-footer{margin-top:2.5rem;padding-top:.8rem;border-top:2px solid var(--line);color:var(--muted);font-size:1rem}
@media (min-width:40rem){
.page{padding:2rem 1.5rem 3rem}
h1{font-size:2.2rem}
dl.facts{grid-template-columns:minmax(8.5rem,max-content) 1fr}
dl.facts dt{padding-top:.05rem}
.team{grid-template-columns:1fr 1fr}
.options{grid-template-columns:repeat(auto-fit,minmax(16rem,1fr))}
.two{grid-template-columns:1fr 1fr}
}
@media print{
@page{margin:1.6cm 1.4cm}
html{font-size:10.5pt}
body{font-size:1rem;line-height:1.45;color:#000}
.page{max-width:none;padding:0}
nav.toc{display:none}
h1{font-size:20pt;color:#000}
h2{font-size:15pt;margin-top:1.2rem;border-color:#000;break-after:avoid}
h3{font-size:12.5pt;break-after:avoid}
.plan-header{border-color:#000}
.card,.option,.quote,.team li,.bullets li{break-inside:avoid}
.card{border-color:#777}
.quote{background:none;border-color:#000}
.badge,.badge.good,.badge.warn{background:none;color:#000;border-color:#000}
.option.chosen{background:none;border-color:#000}
.chips li{background:none;border-color:#777}
.step::before{background:none;color:#000;border:1px solid #000}
.hint,.by,.empty,.for,.label,.kicker,dl.facts dt,.person .role-text,.page-footer{color:#333}
a{color:#000;text-decoration:none}
}
`;

const STYLE_HASH = `sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}`;

/**
 * The Content-Security-Policy for the plan page: nothing may load or run; only the page's own style element
 * (allowed by its hash) applies. Send it with the page.
 */
export const PLAN_PAGE_CSP = `default-src 'none'; style-src '${STYLE_HASH}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/** The same policy in the page itself (without frame-ancestors, which a meta element cannot carry), for saved copies. */
const META_CSP = `default-src 'none'; style-src '${STYLE_HASH}'; img-src data:; base-uri 'none'; form-action 'none'`;

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
