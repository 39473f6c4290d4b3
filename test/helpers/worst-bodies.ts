// The worst request bodies we could construct within the default body limit (1 MiB) and the JSON shape limits, for
// every endpoint that takes a body (test/http/plugins/json-body.test.ts; README, Security, "Limits").

export interface WorstCase {
  name: string;
  method: 'POST' | 'PUT';
  /** `{id}` is replaced by a stored plan's id. */
  path: string;
  contentType: string;
  body: string;
  /** The answer expected (the body is refused or invalid: no case is a valid plan). */
  status: number;
}

export interface ShapeLimits {
  maxValues: number;
  maxArrayItems: number;
  maxStringLength: number;
  bodyLimitBytes: number;
}

const PLAN = '"patient":{"reference":"Patient/x"},"status":"active","intent":"plan"';
const plan = (members: string) => `{${PLAN},${members}}`;

/** `count` copies of `unit`, comma-separated. */
const repeat = (unit: string, count: number) => new Array(count).fill(unit).join(',');

/**
 * Arrays of at most maxArrayItems items, `valuesPerItem` JSON values each, filling about `values` values and at most
 * `bytes` bytes in total, as members of one object (keys from `keys`, cycling with a suffix when they run out).
 */
function arrays(
  unit: string,
  valuesPerItem: number,
  values: number,
  bytes: number,
  maxArrayItems: number,
  keys: string[],
) {
  const members: string[] = [];
  let left = values;
  let leftBytes = bytes;
  for (let i = 0; ; i++) {
    const key = i < keys.length ? keys[i] : `${keys[i % keys.length]}${i}`;
    const items = Math.min(
      maxArrayItems,
      Math.floor(left / valuesPerItem),
      Math.floor((leftBytes - key.length - 6) / (unit.length + 1)),
    );
    if (items < 1) break;
    members.push(`"${key}":[${repeat(unit, items)}]`);
    left -= items * valuesPerItem + 1;
    leftBytes -= items * (unit.length + 1) + key.length + 6;
  }
  return members.join(',');
}

/** An object with as many keys as the values and bytes allow. */
function manyKeys(values: number, bytes: number): string {
  const keys: string[] = [];
  for (let i = 0, size = 2; i < values; i++) {
    const member = `"k${i}":1`;
    size += member.length + 1;
    if (size > bytes) break;
    keys.push(member);
  }
  return `{${keys.join(',')}}`;
}

/** CarePlan elements that are arrays (unknown names would fail as unknown elements, which is cheaper). */
const CAREPLAN_ARRAYS = ['note', 'goal', 'careTeam', 'supportingInfo', 'addresses', 'contributor', 'basedOn'];

export function worstCases(limits: ShapeLimits): WorstCase[] {
  // room for the wrapper members, and the values of the plan itself
  const values = limits.maxValues - 200;
  const bytes = limits.bodyLimitBytes - 2048;
  const toFhir = (name: string, body: string, status = 422): WorstCase => ({
    name: `$to-fhir ${name}`,
    method: 'POST',
    path: '/care-plans/$to-fhir',
    contentType: 'application/json',
    body,
    status,
  });
  const fromFhir = (name: string, body: string, status = 422): WorstCase => ({
    name: `$from-fhir ${name}`,
    method: 'POST',
    path: '/care-plans/$from-fhir',
    contentType: 'application/fhir+json',
    body,
    status,
  });
  const carried = (inner: string) => plan(`"unmappedFhir":{${inner}}`);
  // strings as long as allowed, as many as the body holds: `member(text)` is one JSON member holding one of them
  const longString = (unit: string, tail: string) =>
    unit.repeat(Math.floor((limits.maxStringLength - 2) / unit.length)) + tail;
  const longStrings = (member: (text: string) => string, unit: string, tail: string) => {
    const one = member(longString(unit, tail));
    return repeat(one, Math.max(1, Math.floor((bytes - 300) / (one.length + 1))));
  };
  const cases: WorstCase[] = [
    // the audit's body: one long array of numbers (refused by the array limit now)
    toFhir('an array of 500,000 numbers', carried(`"note":[${repeat('1', Math.floor(bytes / 2))}]`), 413),
    toFhir(
      'more JSON values than the limit',
      carried(arrays('1', 1, limits.maxValues + 1000, bytes, limits.maxArrayItems, CAREPLAN_ARRAYS)),
      413,
    ),
    // within the limits: every value an error of the official schema or a rule
    toFhir(
      'arrays of numbers',
      carried(arrays('1', 1, values, bytes, limits.maxArrayItems, CAREPLAN_ARRAYS)),
    ),
    toFhir(
      'arrays of empty objects',
      carried(arrays('{}', 1, values, bytes, limits.maxArrayItems, CAREPLAN_ARRAYS)),
    ),
    toFhir(
      'notes with impossible dates',
      carried(
        arrays('{"text":"a","time":"2026-02-30T10:00:00Z"}', 3, values, bytes, limits.maxArrayItems, [
          'note',
          'noteX',
        ]),
      ),
    ),
    toFhir(
      'extensions breaking ext-1 and url',
      carried(arrays('{}', 1, values, bytes, limits.maxArrayItems, ['extension', 'modifierExtension'])),
    ),
    toFhir('one object with more keys than the limit', carried(`"note":[${manyKeys(values, bytes)}]`), 413),
    toFhir(
      'one object with as many keys as allowed',
      carried(`"note":[${manyKeys(limits.maxArrayItems - 1, bytes)}]`),
    ),
    toFhir(
      'nesting 99 levels deep, many times (valid)',
      carried(
        `"extension":[${repeat(nested(97), Math.min(Math.floor(values / 150), Math.floor(bytes / (nested(97).length + 1))))}]`,
      ),
      200,
    ),
    // long strings against the patterns that could backtrack, as many as fit
    toFhir(
      'base64Binary strings of "AAAA  " groups that fail at the end',
      carried(
        `"extension":[${longStrings((text) => `{"url":"http://x","valueBase64Binary":"${text}"}`, 'AAAA  ', '!')}]`,
      ),
    ),
    toFhir(
      'codes of words that fail at the end',
      carried(
        `"extension":[${longStrings((text) => `{"url":"http://x","valueCode":"${text}"}`, 'a ', ' ')}]`,
      ),
    ),
    // Valid FHIR: the R4 string regex ^[ \r\n\t\S]+$ is an XML Schema regex, where \S is all but space, tab, CR
    // and LF, so a form feed is allowed (R4 datatypes: strings SHOULD NOT hold such characters, a warning at most).
    toFhir(
      'strings with a form feed at the end',
      carried(`"note":[${longStrings((text) => `{"text":"${text}"}`, 'a', '\\f')}]`),
      200,
    ),
    toFhir('a description of blanks', plan(`"description":"${longString(' ', '\\f')}"`), 400),
    toFhir(
      'a string longer than the limit',
      carried(`"note":[{"text":"${'a'.repeat(Math.min(bytes - 300, limits.maxStringLength + 1))}"}]`),
      413,
    ),
    // the API schema (allErrors) on its own
    toFhir(
      'goals past maxItems, each invalid',
      plan(`"goals":[${repeat('{}', Math.min(limits.maxArrayItems, values, Math.floor(bytes / 3)))}]`),
      400,
    ),
    {
      name: 'POST /care-plans goals of numbers',
      method: 'POST',
      path: '/care-plans',
      contentType: 'application/json',
      body: plan(
        arrays('1', 1, values, bytes, limits.maxArrayItems, ['goals', 'activities', 'barriers', 'strengths']),
      ),
      status: 400,
    },
    {
      name: 'POST /care-plans carried arrays of numbers',
      method: 'POST',
      path: '/care-plans',
      contentType: 'application/json',
      body: carried(arrays('1', 1, values, bytes, limits.maxArrayItems, CAREPLAN_ARRAYS)),
      status: 422,
    },
    {
      name: 'PUT /care-plans/{id} a goal with as many keys as allowed',
      method: 'PUT',
      path: '/care-plans/{id}',
      contentType: 'application/json',
      body: plan(`"goals":[${manyKeys(limits.maxArrayItems - 1, bytes)}]`),
      status: 400,
    },
    {
      name: 'POST /care-plans/{id}/goals with as many keys as allowed',
      method: 'POST',
      path: '/care-plans/{id}/goals',
      contentType: 'application/json',
      body: manyKeys(limits.maxArrayItems - 1, bytes),
      status: 400,
    },
    // FHIR in
    fromFhir(
      'a Bundle of invalid Goals',
      `{"resourceType":"Bundle","type":"collection","entry":[${repeat('{"resource":{"resourceType":"Goal"}}', Math.min(limits.maxArrayItems, Math.floor(values / 3), Math.floor(bytes / 37)))}]}`,
    ),
    fromFhir(
      'a CarePlan with contained invalid Goals',
      `{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/x"},"contained":[${repeat('{"resourceType":"Goal","x":1}', Math.min(limits.maxArrayItems, Math.floor(values / 3), Math.floor(bytes / 30)))}]}`,
    ),
    fromFhir(
      'a CarePlan with arrays of numbers',
      `{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/x"},${arrays('1', 1, values, bytes, limits.maxArrayItems, CAREPLAN_ARRAYS)}}`,
    ),
  ];
  for (const c of cases) {
    if (Buffer.byteLength(c.body) > limits.bodyLimitBytes) {
      throw new Error(`${c.name}: ${Buffer.byteLength(c.body)} bytes is over the body limit`);
    }
  }
  return cases;
}

/** An extension nesting `levels` extensions (each level an object and an array). */
function nested(levels: number): string {
  let inner = '{"url":"u","valueString":"x"}';
  for (let i = 0; i < Math.floor(levels / 2) - 1; i++) inner = `{"url":"u","extension":[${inner}]}`;
  return inner;
}
