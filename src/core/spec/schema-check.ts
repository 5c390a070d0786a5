/**
 * Validation against the vendored Compose Specification schema, with ajv's raw output turned into
 * one human message per location: unknown keys are named (with a suggestion when there is a close
 * match), type errors say what was found and what is expected, and the per-alternative noise of
 * `oneOf`/`anyOf` is collapsed.
 */
import AjvModule from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import composeSchema from './compose-spec/compose-spec.json' with { type: 'json' };
import type { Diagnostics } from './diagnostics.ts';
import { didYouMean } from './suggest.ts';
import type { SpecPath } from './yaml-source.ts';

// ajv is CommonJS: under NodeNext the default import is `module.exports`, whose `default` is the class
// (ajv sets `Ajv.default = Ajv`, so this holds whichever interop the runtime applies).
const Ajv = AjvModule.default;

let validator: ValidateFunction | undefined;

/** Compiled once, on first use: compiling the Compose schema takes a few hundred milliseconds. */
function composeValidator(): ValidateFunction {
  if (!validator) {
    const schema = structuredClone(composeSchema) as Record<string, unknown>;
    // ajv 8 defaults to draft-07 and rejects the draft URL the file declares.
    delete schema.$schema;
    const ajv = new Ajv({ strictTypes: false, allowUnionTypes: true, allErrors: true, strict: false, verbose: true, logger: false, validateFormats: false });
    validator = ajv.compile(schema);
  }
  return validator;
}

/**
 * Compiles the Compose schema now. A server calls it before it serves: compiled on the first deploy
 * instead, it held the server's event loop ~0.5 s (over 1.2 s on a loaded machine), delaying DNS
 * answers, health checks and the API with it.
 */
export function warmComposeSchema(): void {
  composeValidator();
}

const SIZE_KEYS = new Set(['memory', 'shm_size', 'mem_limit', 'mem_reservation']);
const DURATION_KEYS = new Set(['interval', 'timeout', 'start_period', 'start_interval', 'stop_grace_period', 'delay', 'window', 'monitor']);

/** Validates `value` (already interpolated) and reports every problem to `diag`. */
export function checkComposeSchema(value: unknown, diag: Diagnostics): void {
  const validate = composeValidator();
  if (validate(value)) return;
  for (const e of collapse(validate.errors ?? [])) report(e, diag);
}

interface Problem {
  path: SpecPath;
  keyword: string;
  error: ErrorObject;
  /** For collapsed type errors: all the types the alternatives accepted. */
  expected?: string[];
}

/**
 * Reduces ajv's errors to the ones worth showing. For a value checked against alternatives
 * (`oneOf`/`anyOf`), a branch whose type did not even match is noise when another branch matched the
 * type and failed on something more specific (an unknown key, a missing key, a bad enum value): keep
 * only the specific ones. When every branch failed on type, merge them into one "expected A or B".
 */
function collapse(errors: ErrorObject[]): Problem[] {
  const relevant = errors.filter((e) => !['oneOf', 'anyOf', 'allOf', 'if', 'then', 'else'].includes(e.keyword));
  const byPath = new Map<string, ErrorObject[]>();
  for (const e of relevant) {
    const list = byPath.get(e.instancePath) ?? [];
    list.push(e);
    byPath.set(e.instancePath, list);
  }
  const paths = [...byPath.keys()];
  const out: Problem[] = [];
  const seen = new Set<string>();
  for (const [instancePath, list] of byPath) {
    const path = pointerToPath(instancePath);
    const typeErrors = list.filter((e) => e.keyword === 'type');
    const others = list.filter((e) => e.keyword !== 'type');
    const deeper = paths.some((p) => p.startsWith(instancePath + '/'));
    if (typeErrors.length > 0 && others.length === 0 && !deeper) {
      const expected = [...new Set(typeErrors.flatMap((e) => typeList(e.params.type)))];
      out.push({ path, keyword: 'type', error: typeErrors[0]!, expected });
    }
    for (const e of others) {
      const key = `${instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ path, keyword: e.keyword, error: e });
    }
  }
  return out;
}

function report(p: Problem, diag: Diagnostics): void {
  const e = p.error;
  const params = e.params as Record<string, unknown>;
  switch (p.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      // Service names get Berth's own, stricter check (with a suggested fix); one message is enough.
      if (p.path.length === 1 && p.path[0] === 'services') return;
      diag.error([...p.path, key], unknownKeyMessage(key, p.path, e.parentSchema), 'key');
      return;
    }
    case 'required':
      diag.error(p.path, `missing required key \`${String(params.missingProperty)}\``);
      return;
    case 'type':
      diag.error(p.path, typeMessage(p.path, p.expected ?? typeList(params.type), e.data));
      return;
    case 'enum':
      diag.error(p.path, `${describe(e.data)} is not allowed here: use one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`);
      return;
    case 'uniqueItems':
      diag.error(p.path, `entries ${Math.min(Number(params.i), Number(params.j))} and ${Math.max(Number(params.i), Number(params.j))} are the same: list each entry once`);
      return;
    default:
      diag.error(p.path, `${describe(e.data)} is invalid: ${e.message ?? e.keyword}`);
  }
}

function unknownKeyMessage(key: string, parent: SpecPath, parentSchema: unknown): string {
  const schema = (parentSchema ?? {}) as { properties?: Record<string, unknown>; patternProperties?: Record<string, unknown> };
  const where = parent.length === 0 ? 'top-level key' : 'key';
  const known = Object.keys(schema.properties ?? {});
  if (known.length > 0) return `unknown ${where} \`${key}\`${didYouMean(key, known)}`;
  // Maps keyed by name (services, volumes, ...) only constrain the name's characters.
  const patterns = Object.keys(schema.patternProperties ?? {}).filter((p) => p !== '^x-');
  if (patterns.length > 0) return `invalid name \`${key}\`: use letters, digits, ".", "_" and "-" only`;
  return `unknown ${where} \`${key}\``;
}

function typeMessage(path: SpecPath, expected: string[], data: unknown): string {
  // `null` is accepted in places as "unset"; offering it as the fix is not useful.
  const shown = expected.length > 1 ? expected.filter((t) => t !== 'null') : expected;
  const words = [...new Set(shown.map(typeWord))];
  const want = words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}` : words[0];
  const last = path[path.length - 1];
  let hint = '';
  if (typeof last === 'string' && expected.includes('string')) {
    if (DURATION_KEYS.has(last)) hint = ' such as "10s"';
    else if (SIZE_KEYS.has(last)) hint = ' such as "512m"';
  }
  return `expected ${want}${hint}, found ${describe(data)}`;
}

function typeList(t: unknown): string[] {
  return Array.isArray(t) ? t.map(String) : [String(t)];
}

function typeWord(t: string): string {
  switch (t) {
    case 'object':
      return 'a mapping (key: value)';
    case 'array':
      return 'a list';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'integer':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'nothing (null)';
    default:
      return t;
  }
}

/** Short description of a found value for messages: `the number 5`, `a list`, `"abc"`. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  const s = String(v);
  return JSON.stringify(s.length > 40 ? s.slice(0, 37) + '...' : s);
}

function pointerToPath(pointer: string): SpecPath {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((seg) => {
      const s = seg.replace(/~1/g, '/').replace(/~0/g, '~');
      return /^\d+$/.test(s) ? Number(s) : s;
    });
}
