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
 * - nesting: AJV's code overflows the stack at an extension nested ~1,000 deep (the deciders without element rules at
 *   ~5,600; found by a review; with them they stop at level 129, as the walk). src/fhir/validation/index.ts reports a
 *   thrown RangeError as an issue, and the rules' walk refuses anything nested deeper than 128 levels, so such a
 *   resource is invalid either way.
 * test/fhir/validation/deciders.test.ts checks these verdicts against AJV's on fixtures, generated plans and
 * their mutations.
 *
 * Element rules (`elementRules`): the hand-written rules of src/fhir/validation/element-walk.ts (real
 * calendar dates, Extension.url and ext-1, at most MAX_DEPTH levels of nesting) are decided in the same pass, so
 * that a valid resource is visited once, not once by the schema and once more by the walk (issue 18: the walk was
 * 15 % of map + validate). They are applied where the walk applies them, by property name (decided here, when the
 * code is generated: `dateKey(name)`; `extension` and `modifierExtension`), and through the walk's own functions,
 * passed in at run time (`createDeciders(rules)`, so that the generated file imports nothing and loads in plain
 * Node). With them a decider answers "the schema and the walk both find nothing" (the test's oracle).
 * The depth is counted as the walk counts it: the resource is level 0, each object one level below its owner
 * (arrays are not levels); a definition with properties is always a function here, so each object level is one call.
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
 * @typedef {object} ElementRules
 * @property {(name: string) => boolean} dateKey whether the walk date-checks the string values of a property
 */

const EXTENSION_KEYS = new Set(['extension', 'modifierExtension']);

/**
 * @param {{ definitions: Record<string, Record<string, any>> }} schema the prepared schema
 * @param {readonly string[]} types the definitions to export (resource types)
 * @param {ElementRules} elementRules where the walk's rules apply (see above)
 * @returns {{ code: string, functions: number, dateKeys: string[] }} ESM code exporting `createDeciders(rules)`,
 *   which returns one validate function per type, given the walk's hasImpossibleDate, isBrokenExtension and
 *   MAX_DEPTH; the property names whose values are date-checked
 */
export function decidersCode(schema, types, elementRules) {
  const defs = schema.definitions;
  /** @type {Set<string>} */
  const dateKeys = new Set();
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
   * @param {string} level the nesting level of `x` (an expression: `d`, `d + 1`)
   * @param {boolean} [atDefinition] `node` is a definition, checked by its own function
   * @returns {string}
   */
  function check(node, x, level, atDefinition = false) {
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
      code += def.properties
        ? `if (!${functionFor(name)}(${x}, ${level})) return false;`
        : check(def, x, level);
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
      // an object inline (not a definition) would be a level without a call of its own: the depth would be off
      if (!atDefinition) throw new Error('properties outside a definition');
      const required = node.required ?? [];
      if (!Array.isArray(required)) throw new Error('required is not an array');
      for (const r of required) code += `if (${x}.${member(String(r))} === undefined) return false;`;
      code += properties(node, x, level);
    }
    if (node.items !== undefined) {
      if (type !== 'array' || Array.isArray(node.items)) throw new Error('items');
      const i = `i${nextVar++}`;
      const item = `v${nextVar++}`;
      // the items of an array are on the array's level (an array is not a level of its own)
      code += `for (let ${i} = 0; ${i} < ${x}.length; ${i}++) { const ${item} = ${x}[${i}]; ${check(node.items, item, level)} }`;
    }
    return code;
  }

  /**
   * The walk's rules for a property's value, by the property's name.
   * @param {string} name
   * @param {string} value
   */
  function elementChecks(name, value) {
    let code = '';
    if (elementRules.dateKey(name)) {
      dateKeys.add(name);
      code += `if (hasImpossibleDate(${value})) return false;`;
    }
    if (EXTENSION_KEYS.has(name)) code += `for (const e of ${value}) if (isBrokenExtension(e)) return false;`;
    return code;
  }

  /**
   * @param {Record<string, any>} node
   * @param {string} x
   * @param {string} level
   */
  function properties(node, x, level) {
    const props = Object.entries(node.properties ?? {});
    const closed = node.additionalProperties === false;
    if (node.additionalProperties !== undefined && !closed) throw new Error('additionalProperties');
    const value = `v${nextVar++}`;
    const inner = `${level} + 1`;
    if (!closed) {
      // the walk has nothing to say about open objects (a nested resource is walked on its own)
      if (props.some(([, s]) => s.$ref !== undefined || s.items !== undefined))
        throw new Error('an open object with complex properties');
      // open objects (ResourceList: only resourceType is looked at): probe the few declared properties, as AJV
      return props
        .map(([p, s]) => {
          const checks = check(s, value, inner);
          return checks
            ? `{ const ${value} = ${x}.${member(p)}; if (${value} !== undefined) { ${checks} } }`
            : '';
        })
        .join('');
    }
    const key = `k${nextVar++}`;
    const cases = props
      .map(([p, s]) => {
        // schema first: the element rules see a value of the right type (an extension array of objects)
        const checks = check(s, value, inner) + elementChecks(p, value);
        return `case ${JSON.stringify(p)}: ${checks ? `if (${value} !== undefined) { ${checks} }` : ''} break;`;
      })
      .join('');
    return `for (const ${key} in ${x}) { const ${value} = ${x}[${key}]; switch (${key}) { ${cases} default: return false; } }`;
  }

  const exported = types.map((t) => [t, functionFor(t)]);
  let functions = '';
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    functions += `function ${functionNames.get(name)}(x, d) { if (d > MAX_DEPTH) return false;${check(defs[name], 'x', 'd', true)} return true; }\n`;
  }
  let code = '"use strict";\n';
  for (const [pattern, name] of patterns)
    code += `const ${name} = new RegExp(${JSON.stringify(pattern)}, "u");\n`;
  // What index.ts reports if AJV's allErrors validator ever found nothing where a decider failed.
  code +=
    'const FAILED = Object.freeze([Object.freeze({ instancePath: "", schemaPath: "#", keyword: "schema", params: {}, message: "does not match the FHIR R4 schema" })]);\n' +
    'function decider(decide) { const validate = (data) => { const valid = decide(data); validate.errors = valid ? null : FAILED; return valid; }; validate.errors = null; return validate; }\n';
  const exports = exported.map(([type, fn]) => `${type}: decider((x) => ${fn}(x, 0))`).join(', ');
  code +=
    'export function createDeciders({ hasImpossibleDate, isBrokenExtension, MAX_DEPTH }) {\n' +
    `${functions}return { ${exports} };\n}\n`;
  return { code, functions: functionNames.size, dateKeys: [...dateKeys].sort() };
}
