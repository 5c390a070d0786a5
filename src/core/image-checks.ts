/**
 * The image standards of the seed teams, as a report with pass / warn / fail per check. Pure: the
 * caller passes the Dockerfile text and what the engine says about the built image and its parent.
 */

export type CheckLevel = 'pass' | 'warn' | 'fail';

export const CHECK_IDS = ['base-chain', 'no-secrets', 'pinned-from', 'healthcheck', 'non-root', 'size'] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export interface CheckResult {
  id: CheckId;
  level: CheckLevel;
  message: string;
}

export interface ImageFacts {
  dockerfile: string;
  /** Depth of the parent image in its chain (a base image is 1), when the parent was built by Berth. */
  parentDepth?: number;
  /** From the built image's config. */
  env: string[];
  user: string;
  hasHealthcheck: boolean;
  /** Unpacked, as the engine reports it (`docker image inspect .Size`); `berth images` shows the same measure. */
  sizeBytes: number;
  previousSizeBytes?: number;
  /** The service declares a health check itself (Compose healthcheck or x-berth.health). */
  serviceHasHealth: boolean;
  maxDepth: number;
}

const SECRET_NAME = /(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY)/i;
const SECRET_VALUE = /(AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY|gh[pousr]_[A-Za-z0-9]{30,}|xox[baprs]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{16,})/;

/** FROM lines of the final stage chain: image references (stage names and `scratch` left out). */
export function fromImages(dockerfile: string): string[] {
  const stages = new Set<string>();
  const out: string[] = [];
  for (const raw of dockerfile.split('\n')) {
    const m = /^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(raw);
    if (!m) continue;
    const ref = m[1]!;
    if (!stages.has(ref.toLowerCase()) && ref !== 'scratch') out.push(ref);
    if (m[2]) stages.add(m[2].toLowerCase());
  }
  return out;
}

function declared(dockerfile: string): { name: string; value: string; kind: 'ENV' | 'ARG' }[] {
  const out: { name: string; value: string; kind: 'ENV' | 'ARG' }[] = [];
  for (const raw of dockerfile.split('\n')) {
    const m = /^\s*(ENV|ARG)\s+(.+)$/i.exec(raw);
    if (!m) continue;
    const kind = m[1]!.toUpperCase() as 'ENV' | 'ARG';
    const rest = m[2]!.trim();
    const pairs = rest.includes('=') ? rest.split(/\s+(?=[A-Za-z_][A-Za-z0-9_]*=)/) : [rest.replace(/\s+/, '=')];
    for (const p of pairs) {
      const eq = p.indexOf('=');
      out.push({ kind, name: eq < 0 ? p : p.slice(0, eq), value: eq < 0 ? '' : p.slice(eq + 1).replace(/^["']|["']$/g, '') });
    }
  }
  return out;
}

/**
 * An image size as the checks report and `berth images` both show it (1 MB = 1024² bytes). Both
 * measure the same thing: the unpacked image, as the engine counts it (`docker images`).
 */
export function formatImageSize(bytes: number): string {
  const r = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;
  if (bytes < 1024 * 1024) return `${r(bytes / 1024, 1)} kB`;
  if (bytes < 1024 ** 3) return `${r(bytes / 1024 ** 2, 1)} MB`;
  return `${r(bytes / 1024 ** 3, 2)} GB`;
}

export function checkImage(f: ImageFacts): CheckResult[] {
  const results: CheckResult[] = [];
  const depth = (f.parentDepth ?? 1) + 1;
  results.push(depth > f.maxDepth
    ? { id: 'base-chain', level: 'fail', message: `image chain is ${depth} levels deep (base → … → app); at most ${f.maxDepth} allowed: build on a runtime image directly` }
    : { id: 'base-chain', level: 'pass', message: `image chain is ${depth} levels deep (at most ${f.maxDepth})` });

  const leaks: string[] = [];
  for (const d of declared(f.dockerfile)) {
    if (SECRET_VALUE.test(d.value)) leaks.push(`${d.kind} ${d.name} holds what looks like a key`);
    else if (SECRET_NAME.test(d.name) && d.value !== '') leaks.push(`${d.kind} ${d.name} sets a secret-looking name to a value`);
  }
  for (const e of f.env) {
    const eq = e.indexOf('=');
    const [name, value] = [e.slice(0, eq), e.slice(eq + 1)];
    if (SECRET_VALUE.test(value) && !leaks.some((l) => l.includes(` ${name} `))) leaks.push(`image ENV ${name} holds what looks like a key`);
  }
  results.push(leaks.length
    ? { id: 'no-secrets', level: 'fail', message: `${leaks.join('; ')}: pass secrets at run time (berth secret set), never in the image` }
    : { id: 'no-secrets', level: 'pass', message: 'no secrets in ENV or ARG' });

  const loose = fromImages(f.dockerfile).filter((r) => !r.includes('@') && (!/:[^/]+$/.test(r) || r.endsWith(':latest')));
  results.push(loose.length
    ? { id: 'pinned-from', level: 'fail', message: `FROM ${loose.join(', ')} is not pinned: name a version tag or a digest, never :latest` }
    : { id: 'pinned-from', level: 'pass', message: 'FROM images are pinned' });

  results.push(f.hasHealthcheck || f.serviceHasHealth
    ? { id: 'healthcheck', level: 'pass', message: f.hasHealthcheck ? 'the image defines a HEALTHCHECK' : 'the service defines a health check' }
    : { id: 'healthcheck', level: 'warn', message: 'no health check: add HEALTHCHECK to the Dockerfile or x-berth.health to the service' });

  const user = f.user.trim();
  results.push(user && user !== 'root' && user !== '0' && !user.startsWith('0:') && !user.startsWith('root:')
    ? { id: 'non-root', level: 'pass', message: `runs as ${user}` }
    : { id: 'non-root', level: 'warn', message: 'runs as root: add USER with an unprivileged user' });

  const mb = formatImageSize;
  const delta = f.previousSizeBytes === undefined ? '' : ` (previous build ${mb(f.previousSizeBytes)}, ${f.sizeBytes >= f.previousSizeBytes ? '+' : '−'}${mb(Math.abs(f.sizeBytes - f.previousSizeBytes))})`;
  results.push({ id: 'size', level: 'pass', message: `image size ${mb(f.sizeBytes)}${delta}` });
  return results;
}

/**
 * The app's policy over the report: `strict` checks fail where they would warn, `warnOnly` checks
 * warn where they would fail (the message says so, so the exception stays visible).
 */
export function applyCheckPolicy(results: CheckResult[], policy: { strict: readonly string[]; warnOnly: readonly string[] }): CheckResult[] {
  return results.map((r) => {
    if (r.level === 'warn' && policy.strict.includes(r.id)) return { ...r, level: 'fail', message: `${r.message} (strict in x-berth.pipeline.checks)` };
    if (r.level === 'fail' && policy.warnOnly.includes(r.id)) return { ...r, level: 'warn', message: `${r.message} (only a warning: warn_only in x-berth.pipeline.checks)` };
    return r;
  });
}
