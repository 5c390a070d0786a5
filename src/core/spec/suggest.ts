/**
 * "Did you mean …?" hints for misspelt keys: the closest candidate by edit distance, if it is close
 * enough to be a plausible typo rather than a different word.
 */

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    d.push(new Array<number>(b.length + 1).fill(0));
    d[i]![0] = i;
  }
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate closest to `word`, or undefined when none is within a typo's reach. */
export function closestMatch(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  // A third of the length, at least 1 and at most 3 edits: `enviroment` → `environment`, not `image` → `init`.
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(w, c.toLowerCase());
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** ` (did you mean `x`?)`-style suffix, or empty. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const m = closestMatch(word, candidates);
  return m === undefined ? '' : `: did you mean \`${m}\`?`;
}

/** "unknown key `prot`: did you mean `port`?", or, with no close match, the keys that are allowed. */
export function unknownKey(key: string, allowed: readonly string[], where: string): string {
  const near = closestMatch(key, allowed);
  if (near !== undefined) return `unknown key \`${key}\`: did you mean \`${near}\`?`;
  return `unknown key \`${key}\`: ${where} accepts ${allowed.map((k) => `\`${k}\``).join(', ')}`;
}

/**
 * The message for a name that does not exist: `no app "shpo": did you mean "shop"?`, or, with no close
 * match, the names there are (`…: apps are api, shop`), or `hint` when there are none at all.
 * `where` (e.g. `in shop/prod`) follows the name.
 */
export function unknownName(o: { what: string; name: string; candidates: Iterable<string>; where?: string; plural?: string; hint?: string }): string {
  const all = [...new Set(o.candidates)].sort();
  const head = `no ${o.what} "${o.name}"${o.where ? ` ${o.where}` : ''}`;
  const near = closestMatch(o.name, all);
  if (near !== undefined) return `${head}: did you mean "${near}"?`;
  if (all.length === 0) return o.hint ? `${head}: ${o.hint}` : head;
  const shown = all.length > 12 ? `${all.slice(0, 12).join(', ')}, … (${all.length})` : all.join(', ');
  return `${head}: ${all.length === 1 ? `the only ${o.what} is` : `${o.plural ?? `${o.what}s`} are`} ${shown}`;
}
