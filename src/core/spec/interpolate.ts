/**
 * Compose variable interpolation, run on string values before schema validation (as docker compose
 * does): `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
 * `${VAR:+alt}`, `${VAR+alt}`, nested references inside the default/alt/error words, and `$$` for a
 * literal `$`. Keys are never interpolated.
 */
import { isMap, isScalar, isSeq } from 'yaml';
import type { Diagnostics } from './diagnostics.ts';
import { isMergeKey, type SpecPath } from './yaml-source.ts';

export type InterpolationResult = { ok: true; value: string; unset: string[] } | { ok: false; message: string };

const NAME_START = /[A-Za-z_]/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const LITERAL_HINT = 'write "$$" for a literal "$"';

class TemplateError extends Error {}

/** Interpolates one string. `unset` lists variables that were referenced without a value or default. */
export function interpolate(text: string, env: Readonly<Record<string, string>>): InterpolationResult {
  try {
    const p = new TemplateParser(text, env);
    const value = p.parse(0, false).value;
    return { ok: true, value, unset: [...new Set(p.unset)] };
  } catch (e) {
    if (e instanceof TemplateError) return { ok: false, message: e.message };
    throw e;
  }
}

class TemplateParser {
  unset: string[] = [];

  constructor(
    private readonly text: string,
    private readonly env: Readonly<Record<string, string>>,
  ) {}

  /**
   * Parses from `start` until the end, or (inside a `${...}` word) until the closing brace;
   * `end` is the index of that brace, or the text length when it was never found.
   */
  parse(start: number, insideBraces: boolean): { value: string; end: number } {
    const t = this.text;
    let out = '';
    let i = start;
    while (i < t.length) {
      const ch = t[i]!;
      if (insideBraces && ch === '}') return { value: out, end: i };
      if (ch !== '$') {
        out += ch;
        i++;
        continue;
      }
      const next = t[i + 1];
      if (next === '$') {
        out += '$';
        i += 2;
      } else if (next === '{') {
        const r = this.braced(i);
        out += r.value;
        i = r.end;
      } else if (next !== undefined && NAME_START.test(next)) {
        const name = NAME.exec(t.slice(i + 1))![0];
        out += this.lookup(name);
        i += 1 + name.length;
      } else {
        const shown = next === undefined ? '$' : `$${next}`;
        throw new TemplateError(`invalid "${shown}": "$" must start a variable reference like $NAME or \${NAME}; ${LITERAL_HINT}`);
      }
    }
    return { value: out, end: i };
  }

  /** Handles `${...}` starting at `dollar`; returns the value and the index after the closing brace. */
  private braced(dollar: number): { value: string; end: number } {
    const t = this.text;
    const nameStart = dollar + 2;
    const name = NAME.exec(t.slice(nameStart))?.[0] ?? '';
    let i = nameStart + name.length;
    const closing = t.indexOf('}', nameStart);
    const snippet = (end: number): string => truncate(t.slice(dollar, end));
    if (closing < 0) {
      throw new TemplateError(`unterminated variable reference "${snippet(t.length)}": close it with "}" or ${LITERAL_HINT}`);
    }
    if (name === '') {
      throw new TemplateError(
        `invalid variable reference "${snippet(closing + 1)}": a name starts with a letter or "_" and has only letters, digits and "_"`,
      );
    }
    if (t[i] === '}') return { value: this.lookup(name), end: i + 1 };

    const op = /^(:-|-|:\?|\?|:\+|\+)/.exec(t.slice(i))?.[0];
    if (op === undefined) {
      throw new TemplateError(
        `invalid variable reference "${snippet(closing + 1)}": a name has only letters, digits and "_"; ` +
          'use ${NAME:-default}, ${NAME:?error} or ${NAME:+alternative} for defaults',
      );
    }
    i += op.length;
    // The word may itself hold references; its unset variables only count if the word is used.
    const outerUnset = this.unset;
    this.unset = [];
    const word = this.parse(i, true);
    if (word.end >= t.length) {
      // The `}` seen earlier closed a nested reference, not this one.
      throw new TemplateError(`unterminated variable reference "${snippet(t.length)}": close it with "}" or ${LITERAL_HINT}`);
    }
    const wordUnset = this.unset;
    this.unset = outerUnset;

    const value = this.env[name];
    const isSet = value !== undefined;
    const nonEmpty = isSet && value !== '';
    const useWord = (): string => {
      this.unset.push(...wordUnset);
      return word.value;
    };
    let result: string;
    switch (op) {
      case ':-':
        result = nonEmpty ? value : useWord();
        break;
      case '-':
        result = isSet ? value : useWord();
        break;
      case ':+':
        result = nonEmpty ? useWord() : '';
        break;
      case '+':
        result = isSet ? useWord() : '';
        break;
      default: {
        // `:?` and `?`: required variables.
        const ok = op === ':?' ? nonEmpty : isSet;
        if (!ok) {
          const why = word.value !== '' ? word.value : 'set it in the environment or in the .env file';
          throw new TemplateError(`required variable "${name}" is ${isSet ? 'empty' : 'not set'}: ${why}`);
        }
        result = value!;
      }
    }
    return { value: result, end: word.end + 1 };
  }

  private lookup(name: string): string {
    const v = this.env[name];
    if (v === undefined) {
      this.unset.push(name);
      return '';
    }
    return v;
  }
}

function truncate(s: string): string {
  return s.length > 40 ? s.slice(0, 37) + '...' : s;
}

/** Variables Berth sets in each container (so they are unset when the file is read): `$$PORT` is what was meant. */
const CONTAINER_VARS = new Set(['PORT', 'BERTH_APP', 'BERTH_ENV', 'BERTH_SERVICE', 'BERTH_INSTANCE', 'BERTH_RELEASE']);

/**
 * Interpolates every string scalar of the YAML tree in place. Aliases are skipped: their anchor is
 * interpolated where it is defined, and `toJS()` later copies the result.
 */
/** A complex (non-scalar) key as text; the yaml library throws rendering some (a bad merge inside it): `?` then, the schema check names it. */
function keyText(key: unknown): string {
  try {
    return String(key);
  } catch {
    return '?';
  }
}

export function interpolateTree(root: unknown, env: Readonly<Record<string, string>>, diag: Diagnostics): void {
  const warned = new Set<string>();
  const walk = (node: unknown, path: SpecPath): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : keyText(pair.key);
        walk(pair.value, isMergeKey(pair.key) ? path : [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
      const r = interpolate(node.value, env);
      if (!r.ok) {
        diag.error(path, r.message);
        return;
      }
      node.value = r.value;
      for (const name of r.unset) {
        if (warned.has(name)) continue;
        warned.add(name);
        diag.warn(path, CONTAINER_VARS.has(name)
          ? `variable "${name}" is not set; using an empty string. Berth sets ${name} inside each container, not when it reads this file: ` +
            `write $$${name} to pass "$${name}" through to the container's shell (e.g. command: sh -c 'exec node server.js --port $$${name}')`
          : `variable "${name}" is not set; using an empty string (set it in the environment or in the .env file)`);
      }
    }
  };
  walk(root, []);
}
