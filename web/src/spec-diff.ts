/** A release's changes against the previous one, field by field (pure: tested in spec-diff.test.ts). */
/** Flattens a spec to `path → value` lines, for a readable diff. */
export function flatten(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(v) && v.some((x) => x !== null && typeof x === 'object')) {
    v.forEach((x, i) => flatten(x, `${prefix}[${i}]`, out));
  } else {
    out.set(prefix, JSON.stringify(v));
  }
  return out;
}

export function specDiff(a: unknown, b: unknown): { key: string; before?: string; after?: string }[] {
  const x = flatten(a);
  const y = flatten(b);
  const keys = [...new Set([...x.keys(), ...y.keys()])].sort();
  return keys.filter((k) => x.get(k) !== y.get(k)).map((k) => ({ key: k, ...(x.has(k) ? { before: x.get(k) } : {}), ...(y.has(k) ? { after: y.get(k) } : {}) }));
}
