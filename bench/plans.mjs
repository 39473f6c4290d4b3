// Deterministic generator of shared-decision care plans for the benchmark (no dependencies, no I/O).
//
//   generatePlan(size, index)  -> one plan; the same (size, index) always gives the same plan
//   generatePool(size, count)  -> `count` different plans of one size
//
// Sizes (counts are exact for every plan of a size; the content varies):
//   small  : 1 goal,  1 activity,  2 team members, 1 preference, 0 barriers, 0 decisions
//   medium : 5 goals, 5 activities, 4 team members, 2 preferences, 2 barriers, 1 decision   (issue 6)
//   large  : 20 goals, 25 activities, 12 team members, 6 preferences, 8 barriers, 3 decisions,
//            plus whatMatters and 6 strengths
// Every plan is valid against schemas/care-plan.schema.json and passes the plan rules (links resolve,
// chosen option exists, period in order).

export const SIZES = {
  small: {
    goals: 1,
    activities: 1,
    members: 2,
    preferences: 1,
    barriers: 0,
    decisions: 0,
    strengths: 0,
    whatMatters: false,
  },
  medium: {
    goals: 5,
    activities: 5,
    members: 4,
    preferences: 2,
    barriers: 2,
    decisions: 1,
    strengths: 0,
    whatMatters: false,
  },
  // The medium counts with the least content the schema allows a realistic plan to have (no targets, no
  // agreements, no codings, no schedules, one-line statements): a reference point for how much the content,
  // not the counts, costs.
  mediumLean: {
    goals: 5,
    activities: 5,
    members: 4,
    preferences: 2,
    barriers: 2,
    decisions: 1,
    strengths: 0,
    whatMatters: false,
    lean: true,
  },
  large: {
    goals: 20,
    activities: 25,
    members: 12,
    preferences: 6,
    barriers: 8,
    decisions: 3,
    strengths: 6,
    whatMatters: true,
  },
};

/** mulberry32: small, fast, good enough for test data. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = [
  'Maria',
  'Ana',
  'Chidi',
  'Jiwoo',
  'Rui',
  'Priya',
  'Tomas',
  'Aiko',
  'Fatima',
  'Lars',
  'Noor',
  'Kwame',
  'Elena',
  'Sven',
];
const LAST = [
  'Lopez',
  'Okafor',
  'Kim',
  'Silva',
  'Patel',
  'Novak',
  'Tanaka',
  'Haddad',
  'Berg',
  'Mensah',
  'Rossi',
  'Dubois',
];
const WANTS = [
  'walk to the market on Saturdays without resting',
  'keep my sugar steady so I do not feel dizzy',
  'sleep through the night without pain',
  'cook my own meals again',
  'garden for an hour on Sunday mornings',
  'play with my grandchildren on the floor',
  'climb the stairs to my flat without stopping',
  'go back to my choir on Thursday evenings',
  'take my medicines without mixing them up',
  'visit my sister by bus once a month',
  'stay out of hospital this winter',
  'feel less lonely in the afternoons',
];
const ACTIVITIES = [
  'Home exercise programme: leg strength and balance',
  'Physiotherapist home visit',
  'Weekly pill organiser check with the pharmacist',
  'Apply for the test-strip assistance programme',
  'Dietitian session on cooking with less salt',
  'Community transport booking for clinic visits',
  'Phone check-in with the practice nurse',
  'Walking group at the community centre',
  'Sleep diary kept for two weeks',
  'Review of pain medication with the GP',
];
const BARRIERS = [
  'transportation',
  'cost',
  'health-literacy',
  'language',
  'housing',
  'food',
  'caregiver-support',
  'time',
  'other',
];
const ROLES = [
  'patient',
  'caregiver',
  'family-member',
  'friend',
  'physician',
  'nurse',
  'therapist',
  'pharmacist',
  'social-worker',
  'care-coordinator',
  'administrative',
  'other',
];
const LIFECYCLE = ['proposed', 'planned', 'accepted', 'active', 'on-hold'];
const ACHIEVEMENT = ['in-progress', 'improving', 'worsening', 'no-change', 'sustaining'];
const PRIORITY = ['high-priority', 'medium-priority', 'low-priority'];
const ACTIVITY_STATUS = ['not-started', 'scheduled', 'in-progress', 'on-hold'];
const LOINC_TARGETS = [
  { code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', unit: '%', low: 6, high: 7.5 },
  { code: '8480-6', display: 'Systolic blood pressure', unit: 'mm[Hg]', low: 110, high: 140 },
  { code: '29463-7', display: 'Body weight', unit: 'kg', low: 60, high: 85 },
];

const pad = (n, width) => String(n).padStart(width, '0');

export function generatePlan(size, index) {
  const shape = SIZES[size];
  if (!shape) throw new Error(`unknown plan size ${size}`);
  let sizeSeed = 0;
  for (let i = 0; i < size.length; i++) sizeSeed = (Math.imul(sizeSeed, 31) + size.charCodeAt(i)) | 0;
  const random = rng(Math.imul(index + 1, 2654435761) ^ sizeSeed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
  const person = () => `${pick(FIRST)} ${pick(LAST)}`;

  const patientName = person();
  const patient = { reference: `Patient/bench-${size}-${pad(index, 5)}`, display: patientName };
  const month = pad(int(1, 12), 2);
  const day = pad(int(1, 28), 2);
  const start = `2026-${month}-${day}`;
  const end = `2027-${month}-${day}`;
  const when = (hour) => `${start}T${pad(hour, 2)}:${pad(int(0, 59), 2)}:00+01:00`;

  // Team: the patient first, then caregivers and professionals.
  const members = [{ member: { ...patient }, role: 'patient' }];
  for (let i = 1; i < shape.members; i++) {
    const role = ROLES[1 + ((index + i) % (ROLES.length - 1))];
    const kind = ['caregiver', 'family-member', 'friend'].includes(role) ? 'RelatedPerson' : 'Practitioner';
    const member = {
      member: {
        reference: `${kind}/bench-${kind === 'RelatedPerson' ? 'rp' : 'pr'}-${index}-${i}`,
        display: person(),
      },
      role,
    };
    if (!shape.lean && random() < 0.4) member.roleText = `${role.replace(/-/g, ' ')} for ${patientName}`;
    members.push(member);
  }
  const professionals = members.slice(1).map((m) => ({ ...m.member }));
  const someone = () =>
    professionals.length && random() < 0.5 ? { ...pick(professionals) } : { ...patient };

  const goals = [];
  for (let g = 0; g < shape.goals; g++) {
    if (shape.lean) {
      goals.push({
        key: `goal-${g + 1}`,
        description: { text: `I want to ${WANTS[(index + g) % WANTS.length]} (${g + 1})` },
        lifecycleStatus: pick(LIFECYCLE),
      });
      continue;
    }
    const goal = {
      key: `goal-${g + 1}`,
      description: { text: `I want to ${WANTS[(index + g) % WANTS.length]} (${g + 1}/${shape.goals})` },
      expressedBy: someone(),
      priority: pick(PRIORITY),
      lifecycleStatus: pick(LIFECYCLE),
      achievementStatus: pick(ACHIEVEMENT),
      startDate: start,
    };
    if (random() < 0.3) {
      goal.description.coding = [
        { system: 'http://snomed.info/sct', code: '698360004', display: 'Diabetes self-management plan' },
      ];
    }
    const target = pick(LOINC_TARGETS);
    goal.targets =
      g % 2 === 0
        ? [
            {
              measure: {
                coding: [{ system: 'http://loinc.org', code: target.code, display: target.display }],
              },
              range: {
                low: {
                  value: target.low,
                  unit: target.unit,
                  system: 'http://unitsofmeasure.org',
                  code: target.unit,
                },
                high: {
                  value: target.high,
                  unit: target.unit,
                  system: 'http://unitsofmeasure.org',
                  code: target.unit,
                },
              },
              dueDate: end,
            },
          ]
        : [
            {
              measure: { text: 'Distance walked without resting' },
              quantity: { value: int(100, 2000), unit: 'm', system: 'http://unitsofmeasure.org', code: 'm' },
              dueDate: end,
            },
          ];
    goal.agreements = [
      { who: { ...patient }, status: 'agree' },
      ...(professionals.length
        ? [
            {
              who: { ...professionals[g % professionals.length] },
              status: random() < 0.8 ? 'agree' : 'pending',
            },
          ]
        : []),
    ];
    goals.push(goal);
  }
  const goalLinks = (n) => {
    const links = new Set();
    for (let i = 0; i < n && goals.length; i++) links.add(pick(goals).key);
    return [...links];
  };

  const activities = [];
  for (let a = 0; a < shape.activities; a++) {
    if (shape.lean) {
      activities.push({
        description: `${ACTIVITIES[(index + a) % ACTIVITIES.length]} (#${a + 1})`,
        status: pick(ACTIVITY_STATUS),
        goals: goalLinks(1),
      });
      continue;
    }
    const activity = {
      description: `${ACTIVITIES[(index + a) % ACTIVITIES.length]} (#${a + 1})`,
      status: pick(ACTIVITY_STATUS),
      performers: [random() < 0.5 ? { ...patient } : someone()],
      goals: goalLinks(int(1, 2)),
    };
    if (a % 2 === 0) activity.scheduled = { start, end };
    else
      activity.scheduledText = `Every ${pick(['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday'])} morning`;
    activities.push(activity);
  }

  const preferences = [];
  for (let p = 0; p < shape.preferences; p++) {
    preferences.push({
      kind: p % 2 === 0 ? 'care-experience' : 'treatment-intervention',
      statement:
        p % 2 === 0
          ? `Please call ${pick(FIRST)} before changing any appointment (${p + 1}).`
          : `I prefer exercises at home over going to a gym; tablets before injections (${p + 1}).`,
      expressedBy: { ...patient },
      recordedOn: when(9),
    });
  }

  const barriers = [];
  for (let b = 0; b < shape.barriers; b++) {
    barriers.push({
      statement: `${pick(['No bus to the clinic on weekdays', 'Test strips cost more than my pension allows', 'Forms are only in English', 'My daughter works shifts'])} (${b + 1})`,
      category: BARRIERS[(index + b) % BARRIERS.length],
      goals: goalLinks(1),
    });
  }

  const strengths = [];
  for (let s = 0; s < shape.strengths; s++) {
    strengths.push({
      statement: `${pick(FIRST)} visits every day and cooks with me (${s + 1})`,
      goals: goalLinks(1),
    });
  }

  const decisions = [];
  for (let d = 0; d < shape.decisions; d++) {
    const options = shape.lean
      ? [{ title: `Physiotherapy at the clinic (${d + 1})` }, { title: `Exercises at home (${d + 1})` }]
      : [
          {
            title: `Physiotherapy at the clinic twice a week (${d + 1})`,
            pros: ['Equipment and supervision'],
            cons: ['No bus on weekdays', 'Time off work for the carer'],
          },
          {
            title: `Exercises at home with a visit every two weeks (${d + 1})`,
            pros: ['No travel', 'Fits the routine'],
            cons: ['Needs self-discipline'],
          },
        ];
    decisions.push({
      question: `How should ${patientName} get stronger legs: clinic physiotherapy or exercises at home? (${d + 1})`,
      options,
      chosenOption: pick(options).title,
      rationale:
        'Staying at home matters most and transport is the main barrier; the physician agrees the home programme is safe.',
      participants: [{ ...patient }, ...professionals.slice(0, 2)],
      decidedOn: when(11),
    });
  }

  const plan = {
    patient,
    title: `Plan ${index + 1}: ${WANTS[index % WANTS.length]}`,
    description: `${patientName} and the care team agreed this plan on ${start}.`,
    status: 'active',
    intent: 'plan',
    period: { start, end },
    created: when(10),
    author: { ...patient },
    contributors: professionals.slice(0, 2),
  };
  if (shape.whatMatters) {
    plan.whatMatters = {
      statement: `I want to keep living in my own home and ${WANTS[(index + 3) % WANTS.length]}.`,
      values: ['Independence', 'Time with friends & family', 'Cooking my own food'],
      recordedOn: when(9),
      expressedBy: { ...patient },
    };
  }
  if (goals.length) plan.goals = goals;
  if (preferences.length) plan.preferences = preferences;
  if (strengths.length) plan.strengths = strengths;
  if (barriers.length) plan.barriers = barriers;
  plan.careTeam = { name: `${patientName}'s team`, status: 'active', members };
  if (activities.length) plan.activities = activities;
  if (decisions.length) plan.decisions = decisions;
  return plan;
}

export function generatePool(size, count) {
  const pool = [];
  for (let i = 0; i < count; i++) pool.push(generatePlan(size, i));
  return pool;
}
