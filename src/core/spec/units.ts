/**
 * Strict parsers for the scalar forms Compose allows as strings: durations (`1m30s`), sizes
 * (`512m`), whole numbers and CPU counts. The Compose schema accepts any string for these, and
 * interpolation always yields strings, so this is where `replicas: two` gets caught.
 * Each returns either a value or an error message that says what a right value looks like.
 */

export type Parsed<T> = { value: T; error?: undefined } | { value?: undefined; error: string };

const DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION_PART = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)/y;

export interface DurationOptions {
  /** Also take `d` (24 h), as time ranges do (`logs --since 2d`); Compose and Go have no days. */
  days?: boolean;
  /** Also take `w` (7 days) and `d`, as Compose's `pull_policy: every_<duration>` does (`every_1w`). */
  weeks?: boolean;
}

/**
 * The one duration parser of Berth: Go-style durations as Compose writes them (`10s`, `1m30s`,
 * `1.5h`, `500ms`, `1500us`, a bare `0`) → whole milliseconds, with `d` only when `o.days` (`d` and `w`
 * when `o.weeks`). Used by the spec (healthcheck, stop_grace_period, x-berth.update, pull_policy every_) and by every API field or parameter that
 * takes a duration (alert windows, registry TTLs and intervals, log and metrics time ranges).
 */
export function parseDuration(raw: unknown, o: DurationOptions = {}): Parsed<number> {
  const hint = `write a duration such as 10s, 1m30s, 500ms or 1h${o.weeks ? ' (or days and weeks: 2d, 1w)' : o.days ? ' (or days: 2d)' : ''}`;
  if (typeof raw === 'number') {
    return raw === 0 ? { value: 0 } : { error: `${raw} has no unit: ${hint}` };
  }
  if (typeof raw !== 'string') return { error: `expected a duration: ${hint}` };
  const s = raw.trim();
  if (s === '0') return { value: 0 };
  if (s === '') return { error: `empty duration: ${hint}` };
  const shown = s.length > 40 ? `${s.slice(0, 40)}…` : s;
  let total = 0;
  let at = 0;
  while (at < s.length) {
    DURATION_PART.lastIndex = at;
    const m = DURATION_PART.exec(s);
    if (!m || (m[2] === 'd' && !o.days && !o.weeks) || (m[2] === 'w' && !o.weeks)) return { error: `"${shown}" is not a duration: ${hint}` };
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
    at = DURATION_PART.lastIndex;
  }
  const value = Math.round(total);
  // ~285,000 years: past it milliseconds stop being exact integers (and dates stop existing).
  if (!Number.isSafeInteger(value)) return { error: `"${shown}" is too long a duration: ${hint}` };
  return { value };
}

const SIZE = /^(\d+(?:\.\d+)?|\.\d+)\s*([kmgtp]?)(i?b)?$/i;
const SIZE_FACTORS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
const SIZE_HINT = 'write a size such as 512m, 1g or 64M, or a number of bytes';

/** Docker-style size (`512m`, `1.5gb`, `64M`, `2GiB`, or a byte count) → bytes (binary multiples). */
export function parseSize(raw: unknown): Parsed<number> {
  if (typeof raw === 'number') {
    return Number.isFinite(raw) && raw >= 0 ? { value: Math.floor(raw) } : { error: `${raw} is not a size: ${SIZE_HINT}` };
  }
  if (typeof raw !== 'string') return { error: `expected a size: ${SIZE_HINT}` };
  const m = SIZE.exec(raw.trim());
  if (!m) return { error: `"${raw}" is not a size: ${SIZE_HINT}` };
  return { value: Math.floor(Number(m[1]) * SIZE_FACTORS[m[2]!.toLowerCase()]!) };
}

/** A whole number ≥ 0 given as a number or a numeric string. */
export function parseCount(raw: unknown): Parsed<number> {
  const example = 'write a whole number such as 2';
  if (typeof raw === 'number') {
    return Number.isInteger(raw) && raw >= 0 ? { value: raw } : { error: `${raw} is not a whole number ≥ 0: ${example}` };
  }
  if (typeof raw === 'string') {
    const s = raw.trim();
    if (/^\d+$/.test(s)) return { value: Number(s) };
    if (s !== '' && Number.isFinite(Number(s))) return { error: `"${raw}" is not a whole number ≥ 0: ${example}` };
    return { error: `"${raw}" is not a number: ${example}` };
  }
  return { error: `expected a number: ${example}` };
}

/** CPU count (`0.5`, `"2"`) → nano-CPUs as the Docker API wants them. */
export function parseCpus(raw: unknown): Parsed<number> {
  const hint = 'write a positive number of CPUs such as 0.5 or 2';
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(n)) return { error: `${JSON.stringify(raw)} is not a number: ${hint}` };
  if (n <= 0) return { error: `${n} CPUs is not positive: ${hint}` };
  return { value: Math.round(n * 1e9) };
}

/** Booleans that arrive as strings after interpolation (`"true"`, `"false"`). */
export function parseBool(raw: unknown): Parsed<boolean> {
  if (typeof raw === 'boolean') return { value: raw };
  if (typeof raw === 'string') {
    const s = raw.trim().toLowerCase();
    if (s === 'true') return { value: true };
    if (s === 'false') return { value: false };
  }
  return { error: `${JSON.stringify(raw)} is not a boolean: write true or false` };
}
