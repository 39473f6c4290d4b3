// @ts-check
/**
 * First-error FHIR R4 validators ("deciders") generated from the prepared official schema: they only say valid or
 * not; src/fhir/validation/index.ts re-runs AJV's allErrors validator on a failure to report every issue.
 *
 * Why not AJV's first-error code: for `properties`, AJV probes every property the schema declares
 * (`if (data.valueBoolean !== undefined) ...`), present or not: ~100 for an Extension, ~60 for a CarePlan, against
 * the handful a value carries. Here an object whose schema forbids additional properties is checked by iterating its
 * own keys and dispatching on each (a `switch` over the declared names), so the work follows the value, not the
 * schema. Measured on a medium plan's Bundle (bench/micro.mjs, one core): 62 -> 35 µs.
 *
 * The prepared schema uses only these keywords, and the generator refuses any other: $ref (to #/definitions/...),
 * type (object, array, string, boolean, number; one name), properties, additionalProperties (false), required, items
 * (one schema), pattern, enum and const (strings). Each is decided as AJV 8 decides it (its generated checks):
 * - type: object `x && typeof x == "object" && !Array.isArray(x)`, array `Array.isArray(x)`, the others `typeof`;
 * - required: `x.name === undefined` fails; properties: a property whose value is `undefined` is not checked;
 * - additionalProperties:false: a key (`for...in`, as AJV's loop) outside `properties` fails;
 * - pattern: `new RegExp(p, "u").test(x)`, only for strings; `^[\s\S]+$` (FHIR's string, read as XSD does, see
 *   generate-validators.mjs) is every non-empty string (with "u" `[\s\S]` is every code point, lone surrogates
 *   included), so it is decided by the length;
 * - enum / const: `===` against each (all values are strings: AJV's deep equality is `===` there).
 * Two differences, neither of which changes what validation answers:
 * - a non-enumerable own property is checked by AJV and not here (for...in does not see it), which JSON never shows:
 *   the service validates parsed JSON and its own object literals;
 * - nesting: AJV's code overflows the stack sooner (an extension nested ~1,000 deep, the deciders at ~5,600; found by
 *   a review). src/fhir/validation/index.ts reports a thrown RangeError as an issue, and the rules' walk refuses
 *   anything nested deeper than 128 levels, so such a resource is invalid either way.
 * test/fhir/validation/deciders.test.ts checks these verdicts against AJV's on fixtures, generated plans and
 * their mutations.
 */

const PREFIX = '#/definitions/';
const KEYWORDS = new Set([
  '$ref',
  'type',
  'pattern',
  'enum',
  'const',
  'required',
  'properties',
  'additionalProperties',
  'items',
]);
/** @type {Record<string, (x: string) => string>} */
const TYPE_CHECKS = {
  object: (x) => `${x} && typeof ${x} == "object" && !Array.isArray(${x})`,
  array: (x) => `Array.isArray(${x})`,
  string: (x) => `typeof ${x} == "string"`,
  boolean: (x) => `typeof ${x} == "boolean"`,
  number: (x) => `typeof ${x} == "number"`,
};
const NON_EMPTY_STRING_PATTERN = '^[\\s\\S]+$';
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * @param {{ definitions: Record<string, Record<string, any>> }} schema the prepared schema
 * @param {readonly string[]} types the definitions to export (resource types)
 * @returns {{ code: string, functions: number }} ESM code exporting one validate function per type
 */
export function decidersCode(schema, types) {
  const defs = schema.definitions;
  /** @type {Map<string, string>} */
  const patterns = new Map();
  /** @type {Map<string, string>} */
  const functionNames = new Map();
  /** @type {string[]} */
  const queue = [];
  let nextVar = 0;

  /** @param {string} name */
  const functionFor = (name) => {
    let fn = functionNames.get(name);
    if (!fn) {
      if (!Object.hasOwn(defs, name)) throw new Error(`no definition ${name}`);
      fn = `d${functionNames.size}_${name.replace(/\W/g, '_')}`;
      functionNames.set(name, fn);
      queue.push(name);
    }
    return fn;
  };
  /** @param {string} pattern */
  const regexp = (pattern) => {
    let name = patterns.get(pattern);
    if (!name) {
      name = `P${patterns.size}`;
      patterns.set(pattern, name);
    }
    return name;
  };
  /** @param {string} name */
  const member = (name) => {
    if (!IDENTIFIER.test(name)) throw new Error(`property name ${name} is not an identifier`);
    return name;
  };

  /**
   * Statements that `return false` when the value in variable `x` fails `node`.
   * @param {Record<string, any>} node
   * @param {string} x
   * @returns {string}
   */
  function check(node, x) {
    // a boolean schema (`false` refuses everything) would read here as a schema with no keywords: refused
    if (typeof node !== 'object' || node === null || Array.isArray(node))
      throw new Error('schema is not an object');
    for (const k of Object.keys(node)) if (!KEYWORDS.has(k)) throw new Error(`keyword ${k} is not supported`);
    let code = '';
    if (node.$ref !== undefined) {
      if (!String(node.$ref).startsWith(PREFIX)) throw new Error(`$ref ${node.$ref}`);
      const name = node.$ref.slice(PREFIX.length);
      const def = Object.hasOwn(defs, name) ? defs[name] : undefined;
      if (!def) throw new Error(`no definition ${name}`);
      // a primitive (no properties) is inlined; a complex type is a function (recursion, shared code)
      code += def.properties ? `if (!${functionFor(name)}(${x})) return false;` : check(def, x);
    }
    const type = node.type;
    if (type !== undefined) {
      if (typeof type !== 'string' || !Object.hasOwn(TYPE_CHECKS, type))
        throw new Error(`type ${JSON.stringify(type)}`);
      code += `if (!(${TYPE_CHECKS[type](x)})) return false;`;
    }
    if (node.pattern !== undefined && (type === undefined || type === 'string')) {
      // a pattern applies to strings only (beside type boolean or number it never decides anything)
      const isString = type === 'string' ? '' : `typeof ${x} == "string" && `;
      code +=
        node.pattern === NON_EMPTY_STRING_PATTERN
          ? `if (${isString}${x}.length === 0) return false;`
          : `if (${isString}!${regexp(node.pattern)}.test(${x})) return false;`;
    }
    if (node.enum !== undefined) {
      if (!node.enum.every((/** @type {unknown} */ v) => typeof v === 'string')) throw new Error('enum');
      code += `if (${node.enum.map((/** @type {string} */ v) => `${x} !== ${JSON.stringify(v)}`).join(' && ')}) return false;`;
    }
    if (node.const !== undefined) {
      if (typeof node.const !== 'string') throw new Error('const');
      code += `if (${x} !== ${JSON.stringify(node.const)}) return false;`;
    }
    if (node.required !== undefined || node.properties !== undefined) {
      if (type !== 'object') throw new Error('required/properties without type object');
      const required = node.required ?? [];
      if (!Array.isArray(required)) throw new Error('required is not an array');
      for (const r of required) code += `if (${x}.${member(String(r))} === undefined) return false;`;
      code += properties(node, x);
    }
    if (node.items !== undefined) {
      if (type !== 'array' || Array.isArray(node.items)) throw new Error('items');
      const i = `i${nextVar++}`;
      const item = `v${nextVar++}`;
      code += `for (let ${i} = 0; ${i} < ${x}.length; ${i}++) { const ${item} = ${x}[${i}]; ${check(node.items, item)} }`;
    }
    return code;
  }

  /**
   * @param {Record<string, any>} node
   * @param {string} x
   */
  function properties(node, x) {
    const props = Object.entries(node.properties ?? {});
    const closed = node.additionalProperties === false;
    if (node.additionalProperties !== undefined && !closed) throw new Error('additionalProperties');
    const value = `v${nextVar++}`;
    if (!closed) {
      // open objects (ResourceList: only resourceType is looked at): probe the few declared properties, as AJV
      return props
        .map(([p, s]) => {
          const inner = check(s, value);
          return inner
            ? `{ const ${value} = ${x}.${member(p)}; if (${value} !== undefined) { ${inner} } }`
            : '';
        })
        .join('');
    }
    const key = `k${nextVar++}`;
    const cases = props
      .map(([p, s]) => {
        const inner = check(s, value);
        return `case ${JSON.stringify(p)}: ${inner ? `if (${value} !== undefined) { ${inner} }` : ''} break;`;
      })
      .join('');
    return `for (const ${key} in ${x}) { const ${value} = ${x}[${key}]; switch (${key}) { ${cases} default: return false; } }`;
  }

  const exported = types.map((t) => [t, functionFor(t)]);
  let functions = '';
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    functions += `function ${functionNames.get(name)}(x) { ${check(defs[name], 'x')} return true; }\n`;
  }
  let code = '"use strict";\n';
  for (const [pattern, name] of patterns)
    code += `const ${name} = new RegExp(${JSON.stringify(pattern)}, "u");\n`;
  code += functions;
  // What index.ts reports if AJV's allErrors validator ever found nothing where a decider failed.
  code +=
    'const FAILED = Object.freeze([Object.freeze({ instancePath: "", schemaPath: "#", keyword: "schema", params: {}, message: "does not match the FHIR R4 schema" })]);\n' +
    'function decider(decide) { const validate = (data) => { const valid = decide(data); validate.errors = valid ? null : FAILED; return valid; }; validate.errors = null; return validate; }\n';
  for (const [type, fn] of exported) code += `export const ${type} = decider(${fn});\n`;
  return { code, functions: functionNames.size };
}
