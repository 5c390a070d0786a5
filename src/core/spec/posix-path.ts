/**
 * Minimal POSIX path helpers. `core` may not import `node:path`, and the spec only needs to join a
 * relative path onto the Compose file's directory and to test containment for bind-mount roots.
 */

/** Normalizes `.`/`..`/duplicate slashes; keeps a leading `/`; never climbs above `/`. */
export function normalizePosix(p: string): string {
  const absolute = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!absolute) out.push('..');
      continue;
    }
    out.push(seg);
  }
  const body = out.join('/');
  if (absolute) return '/' + body;
  return body === '' ? '.' : body;
}

/** Joins `rel` onto `base` unless `rel` is already absolute. */
export function resolvePosix(base: string, rel: string): string {
  return normalizePosix(rel.startsWith('/') ? rel : `${base}/${rel}`);
}

export function dirnamePosix(p: string): string {
  const i = p.lastIndexOf('/');
  if (i < 0) return '.';
  return i === 0 ? '/' : p.slice(0, i);
}

export function basenamePosix(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** True when `p` is `root` itself or lies below it (both absolute and normalized). */
export function isWithin(root: string, p: string): boolean {
  const r = normalizePosix(root);
  if (r === '/') return true;
  return p === r || p.startsWith(r + '/');
}
