// The plain-language plan page: every section, plain words for every code, nothing from data unescaped, no
// codes or FHIR ids, a strict CSP that matches the page's one style element, and Accept negotiation.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { escapeHtml } from '../../../src/http/views/html.js';
import { plainDate } from '../../../src/http/views/plain-words.js';
import { PLAN_PAGE_CSP, prefersHtml, renderPlanPage } from '../../../src/http/views/plan-page.js';
import type { SharedCarePlan } from '../../../src/model/care-plan.js';

const example = JSON.parse(
  readFileSync(new URL('../../../schemas/examples/patient-led-plan.json', import.meta.url), 'utf8'),
) as SharedCarePlan;

/** The text a reader sees: no style element, no tags, entities decoded. */
function visibleText(page: string): string {
  return page
    .replace(/<style>[\s\S]*?<\/style>/, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

/** Open and close tags of the elements the page uses balance out. */
function assertBalanced(t: Test, page: string) {
  for (const tag of [
    'html',
    'head',
    'body',
    'header',
    'main',
    'footer',
    'nav',
    'section',
    'article',
    'ul',
    'ol',
    'li',
    'dl',
    'dt',
    'dd',
    'p',
    'h1',
    'h2',
    'h3',
    'span',
    'div',
    'blockquote',
  ]) {
    const opened = page.match(new RegExp(`<${tag}[\\s>]`, 'g'))?.length ?? 0;
    const closed = page.match(new RegExp(`</${tag}>`, 'g'))?.length ?? 0;
    t.equal(opened, closed, `<${tag}> opened ${opened} times and closed ${closed} times`);
  }
}

t.test('the example plan: every section, in plain words', async (t) => {
  const page = renderPlanPage(example);
  const text = visibleText(page);
  t.ok(page.startsWith('<!DOCTYPE html>\n<html lang="en">'), 'an HTML5 document with a language');
  t.match(page, '<meta charset="utf-8">');
  t.match(
    page,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    'readable on a phone',
  );
  t.match(page, '@media print', 'a print stylesheet');
  t.match(page, '<title>Staying at home and walking to the market again (Maria Lopez)</title>');
  t.match(page, /<h1>Staying at home and walking to the market again<\/h1>/);
  for (const heading of [
    'What matters to me',
    'My goals',
    'My care team',
    'What happens next',
    'Decisions we made together',
    'What helps and what gets in the way',
  ]) {
    t.match(page, new RegExp(`<h2 id="[a-z-]+">${heading}</h2>`), `section "${heading}"`);
  }
  t.equal(page.match(/<section aria-labelledby=/g)?.length, 6, 'six labelled sections');
  t.match(page, /<header class="plan-header">/);
  t.match(page, /<main>/);
  t.match(page, /<dl class="facts">/);
  assertBalanced(t, page);

  // What matters, in the patient's words, and preferences.
  t.match(
    text,
    'I want to keep living in my own home and walk to the market on Saturdays to see my friends.',
  );
  t.match(text, 'Said by Maria Lopez on 20 November 2026');
  t.match(text, 'What I value Independence Time with friends & family Cooking my own food');
  t.match(text, 'How I like to be cared for Please speak Spanish with me');
  t.match(text, 'My wishes about treatment I prefer exercises at home');
  // Goals: own words, how they are going, targets in plain words, who agreed.
  t.match(text, 'Walk to the market and back on Saturdays without stopping to rest');
  t.match(text, 'How it is going Under way');
  t.match(text, 'How it is going Getting better');
  t.match(text, 'How important Top priority');
  t.match(text, 'How important Important');
  t.match(text, 'What we aim for Distance walked without resting: 800 m, by 1 March 2027');
  t.match(text, 'Average blood sugar over about 3 months (HbA1c): 7.5% or less, by 20 May 2027');
  t.match(text, 'Maria Lopez agrees');
  t.match(text, 'Dr. Chidi Okafor (doctor) agrees', 'with their place in the team');
  t.match(text, 'Ana Lopez (daughter) has not decided yet');
  t.notMatch(text, 'Where it stands', 'an active goal with a progress says only how it is going');
  // Care team with roles in plain words.
  t.match(text, 'Maria Lopez The person this plan is for');
  t.match(text, 'Ana Lopez Carer Daughter; drives Maria to appointments');
  t.match(text, 'Dr. Chidi Okafor Doctor');
  t.match(text, 'Nurse Jiwoo Kim Nurse');
  t.match(text, 'Rui Silva, physiotherapist Therapist');
  t.match(text, 'Priya Patel, clinic desk Helps with appointments and paperwork');
  // What happens next: what, who, when, and for which goal.
  t.match(
    text,
    'Home exercise programme: leg strength and balance, 20 minutes, 5 days a week Now Happening now',
  );
  t.match(text, 'Who Maria Lopez and Rui Silva, physiotherapist When From 23 November 2026 to 1 March 2027');
  t.match(text, 'Now Booked Who Rui Silva, physiotherapist When Every other Tuesday morning');
  t.match(text, 'Now Not started yet Who Priya Patel, clinic desk When To be arranged');
  t.match(text, "Helps with Keep my sugar steady so I don't feel dizzy");
  // Decisions: question, options with pros and cons, the choice and why.
  t.match(text, 'How should Maria get stronger legs: clinic physiotherapy or exercises at home?');
  t.match(
    text,
    'Physiotherapy at the clinic twice a week Good things Equipment and supervision Things to weigh up',
  );
  t.match(text, 'Our choice Exercises at home with a visit every two weeks');
  t.match(text, 'What we chose Exercises at home with a visit every two weeks');
  t.match(text, 'Why Maria values staying at home and transport is the main barrier');
  t.match(text, 'Who took part Maria Lopez, Ana Lopez and Dr. Chidi Okafor When 20 November 2026');
  t.equal(page.match(/class="option chosen"/g)?.length, 1, 'the chosen option is marked');
  // Strengths and barriers.
  t.match(
    text,
    "What helps me Ana visits every day and cooks with me Helps with: Keep my sugar steady so I don't feel dizzy",
  );
  t.match(text, 'What makes things harder Getting there: No bus to the physiotherapy clinic on weekdays');
  t.match(text, 'Money: Test strips cost more than my pension allows');
  // The header.
  t.match(text, 'Care plan for Maria Lopez');
  t.match(text, 'In use now Agreed together');
  t.match(text, 'When From 20 November 2026 to 20 May 2027');
  t.match(text, 'Made on 20 November 2026 by Maria Lopez with Ana Lopez (daughter) and Dr. Chidi Okafor.');
  t.equal(renderPlanPage(example), page, 'pure: the same plan gives the same page');
});

t.test('no codes, no jargon, no FHIR ids, no scripts, nothing external', async (t) => {
  const page = renderPlanPage({
    ...example,
    id: 'plan-7f3a9c',
    version: '3',
    lastUpdated: '2026-11-21T08:00:00Z',
  });
  for (const code of [
    'high-priority',
    'medium-priority',
    'in-progress',
    'improving',
    'not-started',
    'care-experience',
    'treatment-intervention',
    'transportation',
    'physician',
    'administrative',
    '698360004',
    '4548-4',
    'Hemoglobin',
    'snomed',
    'loinc',
    'unitsofmeasure',
    'Patient/',
    'Practitioner/',
    'RelatedPerson/',
    'maria-lopez',
    'walk-to-market',
    'blood-sugar',
    'plan-7f3a9c',
    'CarePlan',
    'FHIR',
  ]) {
    t.notMatch(page.toLowerCase(), code.toLowerCase(), `"${code}" is not on the page`);
  }
  t.notMatch(page, /<script/i, 'no script element');
  t.notMatch(page, /\son[a-z]+=/i, 'no event handler attribute');
  t.notMatch(page, /\sstyle=/i, 'no style attribute (the CSP allows only the hashed style element)');
  t.notMatch(page, /\ssrc=/i, 'nothing loaded');
  t.notMatch(page, /url\(|@import/, 'the stylesheet loads nothing');
  for (const href of page.match(/href="[^"]*"/g) ?? []) {
    t.match(href, /^href="(#[a-z-]+|data:,)"$/, `${href} stays on the page`);
  }
  t.match(page, '<link rel="icon" href="data:,">', 'an empty icon: browsers do not ask for /favicon.ico');
  t.match(visibleText(page), 'Last changed on 21 November 2026.');
});

const attack = '<script>alert(1)</script>"&\'';
const nasty = (label: string) => `${label} ${attack}`;

const hostile: SharedCarePlan = {
  patient: { reference: 'Patient/p1', display: nasty('patient') },
  title: nasty('title'),
  description: nasty('description'),
  status: 'on-hold',
  intent: 'proposal',
  period: { end: '2027-01' },
  created: '2026',
  author: { display: nasty('author') },
  contributors: [{ reference: 'Practitioner/x', display: nasty('contributor') }],
  whatMatters: {
    statement: `${nasty('statement')}\nsecond line\n\nsecond paragraph`,
    values: [nasty('value')],
    recordedOn: '2026-11-20T10:00:00+01:00',
  },
  goals: [
    {
      key: 'g1',
      description: { text: nasty('goal') },
      expressedBy: { reference: 'Practitioner/x' },
      lifecycleStatus: 'proposed',
      achievementStatus: 'worsening',
      priority: 'low-priority',
      targets: [
        { measure: { text: nasty('measure') }, quantity: { value: 5, comparator: '<', unit: nasty('unit') } },
        { measure: { text: 'steps' }, quantity: { value: 6000, comparator: '>=' } },
        { measure: { text: 'pain' }, quantity: { value: 3, comparator: '<=' } },
        { measure: { text: 'walks' }, quantity: { value: 2, comparator: '>', unit: 'a day' } },
        {
          measure: { text: 'sleep' },
          range: { low: { value: 7, unit: 'hours' }, high: { value: 9, unit: 'hours' } },
        },
        { measure: { text: 'weight' }, range: { low: { value: 60, unit: 'kg' } } },
        { measure: { text: nasty('target measure') }, text: nasty('target text') },
        { measure: { text: 'nothing measured yet' }, quantity: { unit: 'kg' } },
        { dueDate: '2027-02-03' },
        {},
      ],
      agreements: [
        { who: { reference: 'Patient/p1' }, status: 'disagree' },
        { who: { display: nasty('agreer') }, status: 'agree' },
      ],
    },
    {
      id: 'g2',
      description: {
        coding: [{ system: 'http://snomed.info/sct', code: '1', display: nasty('coded goal') }],
      },
      lifecycleStatus: 'completed',
    },
    {
      description: { coding: [{ system: 'http://snomed.info/sct', code: '2' }] },
      lifecycleStatus: 'active',
      targets: [
        {
          measure: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body weight' }] },
          quantity: { value: 70, unit: 'kg' },
        },
        { measure: { coding: [{ system: 'http://loinc.org', code: '99999-9', display: nasty('lab') }] } },
        { measure: { coding: [{ system: 'http://loinc.org', code: '99999-8' }] }, quantity: { value: 1 } },
        { measure: { coding: [{ system: 'http://loinc.org', code: '99999-7' }] }, dueDate: '2027-06-01' },
      ],
    },
  ],
  preferences: [{ kind: 'care-experience', statement: nasty('preference') }],
  strengths: [{ statement: nasty('strength'), goals: ['g1', 'g2', 'no-such-goal'] }],
  barriers: [
    { statement: nasty('barrier') },
    { statement: 'the stairs', category: 'housing', goals: ['g1'] },
  ],
  careTeam: {
    name: nasty('team'),
    status: 'inactive',
    members: [
      { member: { display: nasty('member') }, role: 'care-coordinator', roleText: nasty('role text') },
      { member: { reference: 'Practitioner/x' } },
      { member: { reference: 'RelatedPerson/r9' }, role: 'family-member' },
      { member: { reference: 'Organization/o1' }, role: 'other' },
      { member: { type: 'http://hl7.org/fhir/StructureDefinition/CareTeam' } },
      { member: { reference: 'https://example.org/people/7' } },
    ],
  },
  activities: [
    { status: 'completed', description: nasty('done activity') },
    {
      description: nasty('activity'),
      status: 'on-hold',
      performers: [{ display: nasty('performer') }, { reference: 'Patient/p1' }, { reference: 'Patient/p1' }],
      scheduledText: nasty('when'),
      goals: ['g1', 'g2'],
    },
    {
      status: 'unknown',
      code: { text: nasty('coded activity') },
      scheduled: { start: '2026-12-01', end: '2026-12-01' },
    },
    { status: 'cancelled', code: { coding: [{ display: 'physio' }] }, scheduled: { start: '2026-12-24' } },
    { reference: { reference: 'ServiceRequest/s1', display: nasty('referral') } },
    { reference: { reference: 'ServiceRequest/s2' } },
    {},
  ],
  decisions: [
    {
      question: nasty('question'),
      options: [
        { title: nasty('option'), pros: [nasty('pro')], cons: [nasty('con')] },
        { title: 'wait and see' },
      ],
      rationale: nasty('rationale'),
    },
  ],
};

t.test('everything from data is escaped', async (t) => {
  const page = renderPlanPage(hostile);
  t.notMatch(page, /<script/i, 'no script element');
  t.notMatch(page, `"&'`, 'no raw quote, ampersand or apostrophe from the data');
  const escaped = escapeHtml(attack);
  t.equal(escaped, '&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;&#39;');
  const labels = [
    'patient',
    'title',
    'description',
    'author',
    'contributor',
    'statement',
    'value',
    'goal',
    'measure',
    'unit',
    'target measure',
    'target text',
    'agreer',
    'coded goal',
    'lab',
    'preference',
    'strength',
    'barrier',
    'team',
    'member',
    'role text',
    'done activity',
    'activity',
    'performer',
    'when',
    'coded activity',
    'referral',
    'question',
    'option',
    'pro',
    'con',
    'rationale',
  ];
  for (const label of labels) t.match(page, `${label} ${escaped}`, `${label} is shown, escaped`);
  t.match(page, `<title>title ${escaped} (patient ${escaped})</title>`);
  assertBalanced(t, page);
});

t.test('plain words for every part of a sparse or unusual plan', async (t) => {
  const text = visibleText(renderPlanPage(hostile));
  t.match(text, 'Paused for now A suggestion, not agreed yet');
  t.match(text, 'When Until January 2027');
  t.match(text, `Who made it Made in 2026 by author ${attack} with contributor ${attack}.`);
  t.match(text, `statement ${attack} second line second paragraph`);
  t.match(
    text,
    'How it is going Getting harder Where it stands Suggested, not agreed yet How important When there is time',
  );
  t.match(text, `measure ${attack}: less than 5 unit ${attack}`);
  for (const target of [
    'steps: 6000 or more',
    'pain: 3 or less',
    'walks: more than 2 a day',
    'sleep: between 7 hours and 9 hours',
    'weight: 60 kg or more',
    `target measure ${attack}: target text ${attack}`,
    'nothing measured yet By 3 February 2027',
    'Weight: 70 kg',
    `Weight: 70 kg lab ${attack} By 1 June 2027 My care team`,
  ]) {
    t.match(text, target);
  }
  t.notMatch(text, '99999', 'an unknown code is not shown, nor a value of a measure without words');
  t.match(
    text,
    `Whose words Said by contributor ${attack}`,
    'a bare reference is named from elsewhere in the plan',
  );
  t.match(text, `patient ${attack} does not agree`);
  t.match(text, `agreer ${attack} agrees`);
  t.match(text, `coded goal ${attack} Where it stands Finished`);
  t.match(text, 'A goal we set together Where it stands Working on it now');
  t.match(text, `team ${attack} (not active now)`);
  t.match(text, `member ${attack} Care coordinator: keeps everything joined up role text ${attack}`);
  t.match(text, 'Someone close to me Family');
  t.match(text, 'An organisation that helps me Helps with my care');
  t.match(text, 'My care team Someone in my care team');
  t.match(
    text,
    `activity ${attack} Now Paused for now Who performer ${attack} and patient ${attack} When when ${attack}`,
  );
  t.match(text, `Helps with goal ${attack} coded goal ${attack}`);
  t.match(text, `coded activity ${attack} When On 1 December 2026`);
  t.match(text, 'physio Now Cancelled When From 24 December 2026');
  t.match(text, `referral ${attack}`);
  t.match(text, 'Something arranged by my care team');
  t.match(text, 'Something we agreed to do');
  t.ok(
    text.indexOf('Something we agreed to do') < text.indexOf(`done activity ${attack}`) &&
      text.indexOf(`done activity ${attack}`) < text.indexOf('physio Now Cancelled'),
    'done and cancelled activities come last',
  );
  t.match(text, 'What we chose Not decided yet');
  t.notMatch(text, 'Our choice');
  t.match(text, `strength ${attack} Helps with: goal ${attack}; coded goal ${attack}`);
  t.match(text, `barrier ${attack}`);
  t.match(text, 'Home: the stairs Gets in the way of:');
  t.match(text, `How I like to be cared for preference ${attack}`);
  t.notMatch(text, 'My wishes about treatment', 'no empty subsection');

  const minimal = renderPlanPage({
    patient: { reference: 'Patient/123' },
    status: 'unknown',
    intent: 'plan',
  });
  const minimalText = visibleText(minimal);
  t.match(minimal, '<h1>My care plan</h1>');
  t.match(minimal, '<title>My care plan</title>');
  t.notMatch(minimal, /123|Patient/, 'no id of the patient');
  t.match(minimalText, 'My care plan My care plan Agreed together');
  t.match(minimalText, 'Not written down yet. Tell your care team what matters most to you.');
  t.match(minimalText, 'No goals written down yet.');
  t.match(minimalText, 'Nobody is listed yet.');
  t.match(minimalText, 'Nothing planned yet.');
  t.match(minimalText, 'No decisions written down yet.');
  t.notMatch(minimal, 'id="helps"', 'no strengths or barriers section without any');
  t.notMatch(minimalText, 'Who made it');
  t.notMatch(minimalText, 'Last changed');

  const named = visibleText(
    renderPlanPage({
      patient: { display: 'Sam' },
      status: 'completed',
      intent: 'order',
      period: { start: '2026-01-05' },
      author: { reference: 'Practitioner/a' },
      whatMatters: { statement: 'Family', expressedBy: { display: 'Sam' } },
      careTeam: { members: [{ member: { display: 'Sam' }, role: 'patient' }] },
      activities: [
        { status: 'in-progress', description: 'Walk', performers: [{ display: 'Sam' }, { display: 'Sam' }] },
      ],
      decisions: [{ question: 'Q?', options: [{ title: 'A' }], chosenOption: 'A', decidedOn: '2026-03' }],
      strengths: [{ statement: 'Good neighbours' }],
    }),
  );
  t.match(named, 'Care plan for Sam My care plan Finished Asked for by my care team');
  t.match(named, 'When From 5 January 2026 Who made it Made by Someone in my care team.');
  t.match(named, 'Family Said by Sam', 'who said what matters');
  t.match(named, 'Walk Now Happening now Who Sam When To be arranged');
  t.match(named, 'What we chose A When March 2026');
  t.notMatch(named, 'Who took part');
  const dated = visibleText(
    renderPlanPage({
      patient: { display: 'Sam' },
      status: 'active',
      intent: 'option',
      whatMatters: { statement: 'Garden', recordedOn: '2026-04-01' },
      careTeam: { members: [{ member: { display: 'Sam' } }] },
      decisions: [{ question: 'Q?', options: [{ title: 'A' }], participants: [{ display: 'Sam' }] }],
      barriers: [{ statement: 'Stairs' }],
    }),
  );
  t.match(dated, 'Garden Said on 1 April 2026', 'when it was said, without who');
  t.match(dated, 'One possible plan');
  t.match(dated, 'Who took part Sam');
  t.match(dated, 'My care team Sam What happens next');
  t.match(named, 'What helps me Good neighbours If something');
  t.notMatch(named, 'What makes things harder');
  t.match(dated, 'What helps and what gets in the way What makes things harder Stairs If something');
  t.notMatch(dated, 'What helps me');
  const bare = visibleText(
    renderPlanPage({
      patient: { display: 'Sam' },
      status: 'draft',
      intent: 'proposal',
      whatMatters: { statement: 'Music' },
      goals: [{ description: {}, lifecycleStatus: 'on-hold' }],
    }),
  );
  t.match(
    bare,
    'What matters to me Music My goals What I want to achieve',
    'nothing about who said it or when',
  );
  t.match(bare, 'A goal we set together Where it stands Paused for now');
});

t.test('a strict Content-Security-Policy that allows exactly the page style', async (t) => {
  const page = renderPlanPage(example);
  const style = /<style>([\s\S]*?)<\/style>/.exec(page)?.[1] ?? '';
  t.equal(page.match(/<style>/g)?.length, 1, 'one style element');
  const hash = createHash('sha256').update(style, 'utf8').digest('base64');
  t.equal(
    PLAN_PAGE_CSP,
    `default-src 'none'; style-src 'sha256-${hash}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  );
  t.notMatch(PLAN_PAGE_CSP, 'unsafe', 'no unsafe-inline');
  const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(page)?.[1];
  t.equal(
    meta,
    `default-src &#39;none&#39;; style-src &#39;sha256-${hash}&#39;; img-src data:; base-uri &#39;none&#39;; form-action &#39;none&#39;`,
    'the page carries the same policy for saved copies (a meta element cannot carry frame-ancestors)',
  );
  t.match(page, '<meta name="referrer" content="no-referrer">');
  t.match(page, '<meta name="robots" content="noindex, nofollow">');
});

t.test('dates in words, on the day they were written', async (t) => {
  t.equal(plainDate('2026-11-20'), '20 November 2026');
  t.equal(plainDate('2026-11-20T23:30:00-05:00'), '20 November 2026', 'never shifted by the time zone');
  t.equal(plainDate('2027-01'), 'January 2027');
  t.equal(plainDate('2027'), '2027');
  t.equal(plainDate('2027-13'), '2027', 'a month that does not exist is left out');
  t.equal(plainDate('soon'), undefined);
  t.equal(plainDate(undefined), undefined);
  t.equal(plainDate(''), undefined);
});

t.test('prefersHtml: Accept negotiation for GET /care-plans/{id}', async (t) => {
  const cases: [string | undefined, boolean, string][] = [
    [
      'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7',
      true,
      'Chromium',
    ],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', true, 'Firefox'],
    ['text/html', true, 'only HTML'],
    ['text/html, */*', true, 'HTML named, JSON only by the wildcard'],
    ['text/*', true, 'any text'],
    [undefined, false, 'no Accept header'],
    ['', false, 'an empty Accept header'],
    ['*/*', false, 'anything: JSON'],
    ['application/json', false, 'JSON'],
    ['application/fhir+json', false, 'FHIR JSON'],
    ['text/html, application/json', false, 'a tie keeps JSON'],
    ['text/html;q=0.5, application/json', false, 'JSON ranked higher'],
    ['application/fhir+json, text/html;q=0.9', false, 'FHIR ranked higher'],
    ['text/html;q=0, */*', false, 'HTML refused'],
    ['TEXT/HTML;Q=1', true, 'case-insensitive'],
    ['text/html;q=abc, application/json;q=0.1', false, 'an unreadable q counts as 0'],
    ['text/html;level=1;q=0.9, application/json;q=0.8', true, 'parameters before q'],
  ];
  for (const [accept, expected, why] of cases) t.equal(prefersHtml(accept), expected, `${why}: ${accept}`);
});
