// Request bodies: only UTF-8 JSON, not compressed, and bounded in shape (values, array items, depth, finite numbers)
// before any schema or FHIR validation walks them, so that one request cannot freeze the service.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { escapePointer } from '../../fhir/validation/rules.js';
import { ApiProblem } from '../problems.js';

/** Bodies nesting deeper than this are refused (400) before anything walks them recursively. */
export const MAX_JSON_DEPTH = 100;

export interface JsonBodyLimits {
  /** Most JSON values (objects, arrays, strings, numbers, booleans, nulls) in one body. */
  maxValues: number;
  /** Most items in one array, or members in one object. */
  maxArrayItems: number;
  /** Longest string (key or value), in characters of the JSON text. */
  maxStringLength: number;
  /** Deepest nesting of objects and arrays. */
  maxDepth: number;
}

type Violation = { kind: 'depth' | 'values' } | { kind: 'items' | 'string'; pointer: string };

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;
const MINUS = 45;

const isBlank = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;
const isNumberChar = (c: number) =>
  (c >= 48 && c <= 57) || c === 46 || c === 43 || c === MINUS || c === 101 || c === 69;

/**
 * Scans the JSON text before it is parsed: JSON.parse of a 1 MiB body of 340,000 empty objects alone takes over
 * 100 ms here, so the shape limits are checked on the text, in one pass that allocates nothing per value. Also
 * notes a number literal that JSON.parse would turn into Infinity (e.g. 1e309). Text that is not JSON is left to
 * JSON.parse to refuse.
 */
export function scanJson(
  text: string,
  limits: JsonBodyLimits,
): { violation?: Violation; nonFinite: boolean } {
  const isArray: boolean[] = [];
  const commas: number[] = [];
  const filled: boolean[] = [];
  // where the key of an object's current member is in the text, for a pointer to an array that is too long
  const keyStart: number[] = [];
  const keyEnd: number[] = [];
  const expectKey: boolean[] = [];
  let top = -1;
  let values = 1;
  let nonFinite = false;
  const pointer = (upTo = top): string => {
    let at = '';
    for (let level = 0; level < upTo; level++) {
      if (isArray[level]) at += `/${commas[level]}`;
      else at += `/${escapePointer(keyText(text, keyStart[level], keyEnd[level]))}`;
    }
    return at;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isBlank(c) || c === COLON) continue;
    if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      top--;
      continue;
    }
    if (c === COMMA) {
      if (top < 0) continue;
      if (++values > limits.maxValues) return { violation: { kind: 'values' }, nonFinite };
      if (++commas[top] >= limits.maxArrayItems)
        return { violation: { kind: 'items', pointer: pointer() }, nonFinite };
      expectKey[top] = !isArray[top];
      continue;
    }
    // a value (or a key) starts here: the first one fills its container
    if (top >= 0 && !filled[top]) {
      filled[top] = true;
      if (++values > limits.maxValues) return { violation: { kind: 'values' }, nonFinite };
    }
    if (c === QUOTE) {
      const start = i;
      // the closing quote is the first one not escaped by an odd number of backslashes
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i < 0) return { nonFinite };
        let backslashes = 0;
        while (text.charCodeAt(i - 1 - backslashes) === BACKSLASH) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      const isKey = top >= 0 && expectKey[top];
      if (i - start - 1 > limits.maxStringLength) {
        // a value's pointer names it; a key's, the object that holds it
        return {
          violation: { kind: 'string', pointer: pointer(isKey || top < 0 ? top : top + 1) },
          nonFinite,
        };
      }
      if (isKey) {
        keyStart[top] = start;
        keyEnd[top] = i;
        expectKey[top] = false;
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++top >= limits.maxDepth) return { violation: { kind: 'depth' }, nonFinite };
      isArray[top] = c === OPEN_ARRAY;
      commas[top] = 0;
      filled[top] = false;
      expectKey[top] = c === OPEN_OBJECT;
    } else if (c === MINUS || (c >= 48 && c <= 57)) {
      let end = i + 1;
      let exponent = false;
      for (; end < text.length; end++) {
        const d = text.charCodeAt(end);
        if (d === 101 || d === 69) exponent = true;
        else if (!isNumberChar(d)) break;
      }
      // only a long literal or one with an exponent can overflow a double
      if ((exponent || end - i > 15) && !Number.isFinite(Number(text.slice(i, end)))) nonFinite = true;
      i = end - 1;
    }
  }
  return { nonFinite };
}

/** The text of a key (its JSON escapes decoded; a key that is not valid JSON is shown as written). */
function keyText(text: string, start: number, end: number): string {
  const raw = text.slice(start, end + 1);
  try {
    return JSON.parse(raw) as string;
  } catch {
    return raw.slice(1, -1);
  }
}

/** The JSON pointer of the first number that is not finite. Only called once a body is refused. */
function nonFinitePointer(value: unknown): string {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length) {
    const [item, at] = stack.pop() as [unknown, string];
    if (typeof item === 'number' && !Number.isFinite(item)) return at;
    if (!item || typeof item !== 'object') continue;
    for (const key in item)
      stack.push([(item as Record<string, unknown>)[key], `${at}/${escapePointer(key)}`]);
  }
  return '';
}

/** The problem of a body whose text breaks a shape limit, or undefined when it keeps to all of them. */
export function shapeProblem(
  violation: Violation | undefined,
  limits: JsonBodyLimits,
): ApiProblem | undefined {
  switch (violation?.kind) {
    case undefined:
      return undefined;
    case 'depth':
      return new ApiProblem('bad-request', `the request body nests deeper than ${limits.maxDepth} levels`);
    case 'values':
      return new ApiProblem(
        'body-too-complex',
        `the request body holds more than ${limits.maxValues} JSON values (the limit BODY_MAX_JSON_VALUES)`,
        { errors: [{ pointer: '', detail: `more than ${limits.maxValues} JSON values` }] },
      );
    case 'string':
      return new ApiProblem(
        'body-too-complex',
        `a string in the request body is longer than ${limits.maxStringLength} characters (the limit BODY_MAX_STRING_LENGTH)`,
        {
          errors: [
            { pointer: violation.pointer, detail: `is longer than ${limits.maxStringLength} characters` },
          ],
        },
      );
    case 'items':
      return new ApiProblem(
        'body-too-complex',
        `an array or object in the request body has more than ${limits.maxArrayItems} items or members (the limit BODY_MAX_ARRAY_ITEMS)`,
        {
          errors: [
            { pointer: violation.pointer, detail: `has more than ${limits.maxArrayItems} items or members` },
          ],
        },
      );
  }
}

/** The problem of a parsed body holding a number JSON.parse read as Infinity (e.g. 1e309). */
export function nonFiniteProblem(value: unknown): ApiProblem {
  return new ApiProblem('bad-request', 'the request body holds a number that is not finite', {
    errors: [
      {
        pointer: nonFinitePointer(value),
        detail: 'is a number beyond the range of a double (it would read as Infinity): send a finite number',
      },
    ],
  });
}

/** The body's media type is one this service parses (JSON), whatever its parameters. */
const JSON_MEDIA_TYPE = /^\s*application\/(fhir\+)?json\s*(;|$)/i;
const CHARSET = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i;

const hasBody = (request: FastifyRequest): boolean => {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
};

/**
 * Refuses, before the body is read, what the JSON parser would misread: a compressed body (Content-Encoding other
 * than identity: it would be parsed as the compressed bytes) and a charset other than UTF-8 (it would be decoded
 * as UTF-8 anyway). Both are 415 (RFC 9110, 15.5.16).
 */
function refuseUnreadable(request: FastifyRequest): ApiProblem | undefined {
  if (!hasBody(request)) return undefined;
  const encoding = request.headers['content-encoding'];
  if (encoding !== undefined) {
    const codings = encoding
      .split(',')
      .map((coding) => coding.trim().toLowerCase())
      .filter((coding) => coding && coding !== 'identity');
    if (codings.length) {
      return new ApiProblem(
        'unsupported-media-type',
        `Content-Encoding ${codings.join(', ')} is not supported: send the body uncompressed (identity)`,
        {
          errors: [{ pointer: '', detail: 'Content-Encoding must be identity or absent', in: 'header' }],
          headers: { 'accept-encoding': 'identity' },
        },
      );
    }
  }
  const type = request.headers['content-type'];
  if (type && JSON_MEDIA_TYPE.test(type)) {
    const match = CHARSET.exec(type);
    const charset = match ? (match[1] ?? match[2]) : undefined;
    if (charset !== undefined && charset.toLowerCase() !== 'utf-8') {
      return new ApiProblem(
        'unsupported-media-type',
        `charset ${charset} is not supported: JSON bodies must be UTF-8 (charset=utf-8, or no charset)`,
        { errors: [{ pointer: '', detail: 'the Content-Type charset must be utf-8', in: 'header' }] },
      );
    }
  }
  return undefined;
}

/**
 * Only JSON bodies: text/plain is refused with 415 rather than validated as a string. `__proto__` and
 * `constructor.prototype` keys are refused (400), and so are absurd nesting, non-finite numbers, and bodies past
 * the value and array limits (413).
 */
/** Bodies from this size on are parsed, validated and handled in separate turns of the event loop. */
const YIELD_FROM_BYTES = 64 * 1024;
const isLarge = (request: FastifyRequest): boolean =>
  Number(request.headers['content-length'] ?? 0) >= YIELD_FROM_BYTES;

/**
 * Runs the steps of large bodies one per turn of the event loop: setImmediate alone would run the steps of several
 * bodies back to back in one turn (all immediates queued before it), with no I/O, such as a health probe, between.
 */
const steps: Array<() => void> = [];
let stepping = false;
function nextTurn(step: () => void): void {
  steps.push(step);
  if (stepping) return;
  stepping = true;
  setImmediate(runStep);
}
function runStep(): void {
  const step = steps.shift();
  // scheduled before the step runs, so an exception in it cannot stop the queue
  if (steps.length) setImmediate(runStep);
  else stepping = false;
  step?.();
}

export default fp<JsonBodyLimits>(async function jsonBody(app: FastifyInstance, limits: JsonBodyLimits) {
  app.addHook('preParsing', async (request, _reply, payload) => {
    const problem = refuseUnreadable(request);
    if (problem) throw problem;
    return payload;
  });
  app.removeContentTypeParser(['text/plain', 'application/json']);
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(
    ['application/json', 'application/fhir+json'],
    { parseAs: 'string' },
    (request, body, done) => {
      const text = body as string;
      const scanned = scanJson(text, limits);
      const refused = shapeProblem(scanned.violation, limits);
      if (refused) return done(refused);
      jsonParser(request, text, (error, value) => {
        if (error) return done(error);
        if (scanned.nonFinite) return done(nonFiniteProblem(value));
        // schema validation runs in the next turn, so other requests (health probes) get in between
        if (isLarge(request)) nextTurn(() => done(null, value));
        else done(null, value);
      });
    },
  );
  // and the handler (mapping, FHIR validation) in the turn after that
  app.addHook('preHandler', (request, _reply, done) => {
    if (isLarge(request)) nextTurn(done);
    else done();
  });
});
