import { readFile, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

interface DockerIgnore {
  add(patterns: string | string[]): DockerIgnore;
  ignores(p: string): boolean;
}

// dockerode packs build contexts with tar-fs and filters them with @balena/dockerignore (its
// dependencies, not berth's): load both the way dockerode does, resolved from dockerode's own location,
// so the matcher is the one dockerode users get. We pack ourselves (instead of passing {context, src})
// because dockerode would re-apply .dockerignore and drop an ignored Dockerfile, which Docker keeps.
const requireFromDockerode = createRequire(createRequire(import.meta.url).resolve('dockerode'));
const dockerignore = requireFromDockerode('@balena/dockerignore') as (opts?: { ignorecase?: boolean }) => DockerIgnore;
/** tar-fs's pack; with `finalize: false`, `finish` may add entries (tar-stream's pack) and then finalizes. */
interface TarPack {
  entry(header: { name: string; mode?: number }, content: string): void;
  finalize(): void;
}
const tarFs = requireFromDockerode('tar-fs') as { pack(cwd: string, opts: { entries: string[]; finalize?: boolean; finish?: (pack: TarPack) => void }): Readable };
const require = createRequire(import.meta.url);

interface TarHeader { name: string; type?: string }
type TarExtract = Writable & {
  on(ev: 'entry', fn: (header: TarHeader, stream: Readable, next: (err?: Error) => void) => void): TarExtract;
};
interface TarPack extends Readable {
  entry(header: TarHeader, cb: (err?: Error) => void): Writable;
  finalize(): void;
}
const tarStream = require('tar-stream') as { extract(): TarExtract; pack(): TarPack };

function ignorePatterns(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

/**
 * Applies `.dockerignore` to a context that arrives as a tar stream (e.g. `git archive` of a commit):
 * the same rules as listContextFiles — an ignored directory drops everything below it unless an
 * exception (`!pattern`) could re-include something, the Dockerfile and .dockerignore are always
 * kept — without writing the context to disk and reading it back.
 */
export function filterContextTar(source: Readable, dockerignoreText: string, dockerfile = 'Dockerfile'): Readable {
  const patterns = ignorePatterns(dockerignoreText);
  const ig = dockerignore({ ignorecase: false }).add(patterns);
  const hasExceptions = patterns.some((p) => p.startsWith('!'));
  const always = new Set([dockerfile.replace(/^\.\//, ''), '.dockerignore']);
  const ignored = (p: string): boolean => {
    if (always.has(p)) return false;
    if (!hasExceptions) {
      const parts = p.split('/');
      for (let i = 1; i < parts.length; i++) if (ig.ignores(parts.slice(0, i).join('/'))) return true;
    }
    return ig.ignores(p);
  };
  const extract = tarStream.extract();
  const pack = tarStream.pack();
  extract.on('entry', (header, stream, next) => {
    const name = header.name.replace(/^\.\//, '').replace(/\/+$/, '');
    // git archive's pax global header (the commit id) is not part of the context.
    const keep = name !== '' && header.type !== 'pax-global-header' && !(header.type === 'directory' ? hasExceptions || ignored(name) : ignored(name));
    if (!keep) {
      stream.on('end', () => next());
      stream.resume();
      return;
    }
    stream.pipe(pack.entry(header, (err) => next(err)));
  });
  extract.on('finish', () => pack.finalize());
  extract.on('error', (e) => pack.destroy(e));
  source.on('error', (e) => pack.destroy(e));
  source.pipe(extract);
  return pack;
}

/**
 * A plain tar stream of the given context files (as listed by listContextFiles). Not gzipped: the
 * context only travels over the local socket, where compressing costs more time than it saves.
 */
export function packContext(context: string, files: readonly string[], extra?: { name: string; text: string }): Readable {
  // tar-fs consumes its `entries` array (shift()): hand it a copy so the list can be packed again.
  if (!extra) return tarFs.pack(context, { entries: [...files] });
  // A Dockerfile given as text (Compose's dockerfile_inline) travels as one more file of the context.
  return tarFs.pack(context, {
    entries: files.filter((f) => f !== extra.name), finalize: false,
    finish: (pack) => {
      pack.entry({ name: extra.name, mode: 0o644 }, extra.text);
      pack.finalize();
    },
  });
}

/**
 * Lists the files of a build context (paths relative to `context`, '/'-separated) honouring
 * `.dockerignore`. Ignored directories are not descended into unless an exception (`!pattern`) could
 * re-include something below them. The Dockerfile and .dockerignore are always listed, as the docker
 * CLI does.
 */
export async function listContextFiles(context: string, dockerfile = 'Dockerfile'): Promise<string[]> {
  let patterns: string[] = [];
  try {
    patterns = (await readFile(path.join(context, '.dockerignore'), 'utf8'))
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const ig = dockerignore({ ignorecase: false }).add(patterns);
  const hasExceptions = patterns.some((p) => p.startsWith('!'));
  const always = new Set([dockerfile.replace(/^\.\//, ''), '.dockerignore']);
  const out: string[] = [];

  async function walk(rel: string): Promise<void> {
    const entries = await readdir(path.join(context, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const ent of entries) {
      const p = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        if (ig.ignores(p) && !hasExceptions) continue;
        await walk(p);
      } else if (always.has(p) || !ig.ignores(p)) {
        out.push(p);
      }
    }
  }
  await walk('');
  return out;
}

/**
 * The external base images a Dockerfile starts FROM: `scratch`, earlier stage names and references
 * that still hold an unresolved `$VAR` are left out. ARG defaults declared before the first FROM and
 * the build args are substituted, as Docker does for FROM lines.
 */
export function dockerfileBaseImages(dockerfile: string, buildArgs: Record<string, string> = {}): string[] {
  const lines = dockerfile.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  const argDefaults: Record<string, string> = {};
  const stages = new Set<string>();
  const out: string[] = [];
  let seenFrom = false;
  for (const raw of lines) {
    const line = raw.trim();
    const arg = /^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/i.exec(line);
    if (arg && !seenFrom) {
      const [, name = '', value] = arg;
      if (value !== undefined) argDefaults[name] = value.replace(/^(["'])(.*)\1$/, '$2');
      continue;
    }
    const m = /^FROM\s+(.*)$/i.exec(line);
    if (!m) continue;
    seenFrom = true;
    const words = (m[1] ?? '').split(/\s+/).filter((w) => w && !w.startsWith('--'));
    const vars = { ...argDefaults, ...buildArgs };
    const image = (words[0] ?? '').replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (all, a?: string, b?: string) => vars[a ?? b ?? ''] ?? all);
    const isStage = stages.has(image.toLowerCase());
    if (words[1]?.toLowerCase() === 'as' && words[2]) stages.add(words[2].toLowerCase());
    if (!image || image.includes('$') || image.toLowerCase() === 'scratch' || isStage) continue;
    if (!out.includes(image)) out.push(image);
  }
  return out;
}

/** True for `localhost[:port]/...` and `127.x.x.x[:port]/...` references (berth's own registry). */
export function isLoopbackRegistryRef(ref: string): boolean {
  const first = ref.split('/')[0] ?? '';
  if (!ref.includes('/')) return false;
  return /^(localhost|127(\.\d{1,3}){3})(:\d+)?$/i.test(first);
}
