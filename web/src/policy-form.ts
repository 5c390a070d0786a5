/**
 * The guardrail editor's fields as people type them ↔ a policy layer's values (pure, unit-tested):
 * empty inherits, `none` is an empty list, sizes like `512m`, capabilities without `CAP_`.
 */
import { GUARD_FIELDS, describePolicy, type GuardField, type GuardPolicy } from '../../src/core/guard.ts';
import { parseSize } from '../../src/core/spec/units.ts';

export const LIST_FIELDS: ReadonlySet<GuardField> = new Set<GuardField>(['capabilities', 'bindRoots', 'sysctls']);
export const BOOL_FIELDS: ReadonlySet<GuardField> = new Set(GUARD_FIELDS.filter((f) => !LIST_FIELDS.has(f) && f !== 'pidsLimit' && f !== 'memoryDefaultBytes'));

/** What the form calls a field (the CLI's name: memoryDefault). */
export const fieldLabel = (f: GuardField): string => (f === 'memoryDefaultBytes' ? 'memoryDefault' : f);

/** One typed value → the layer's value; undefined: inherit. Throws a sentence naming the field. */
export function fieldValue(f: GuardField, raw: string): unknown {
  const v = raw.trim();
  if (v === '') return undefined;
  if (LIST_FIELDS.has(f)) return v === 'none' ? [] : v.split(',').map((x) => x.trim()).filter(Boolean).map((x) => (f === 'capabilities' ? x.toUpperCase().replace(/^CAP_/, '') : x));
  if (f === 'pidsLimit') {
    if (!/^\d+$/.test(v)) throw new Error(`pidsLimit: "${v}" is not a whole number (0: no limit)`);
    return Number(v);
  }
  if (f === 'memoryDefaultBytes') {
    if (v === '0') return 0;
    const p = parseSize(v);
    if (p.error !== undefined) throw new Error(`memoryDefault: ${p.error}`);
    return p.value;
  }
  if (v !== 'true' && v !== 'false') throw new Error(`${fieldLabel(f)}: true, false, or empty to inherit (not "${v}")`);
  return v === 'true';
}

/** Every field of a form → the layer (fields left empty are absent: inherited). */
export function layerFrom(get: (f: GuardField) => string): GuardPolicy {
  const out: Record<string, unknown> = {};
  for (const f of GUARD_FIELDS) {
    const v = fieldValue(f, get(f));
    if (v !== undefined) out[f] = v;
  }
  return out as GuardPolicy;
}

/** A stored layer's value of one field as the form shows it ('' when inherited). */
export function fieldText(policy: GuardPolicy | undefined, f: GuardField): string {
  const v = policy?.[f];
  if (v === undefined) return '';
  if (Array.isArray(v)) return v.length ? v.join(', ') : 'none';
  if (f === 'memoryDefaultBytes') return v === 0 ? '0' : describePolicy({ memoryDefaultBytes: v as number }).memoryDefaultBytes ?? String(v);
  return String(v);
}
