import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import type { HostPathPolicy, HostPathVerdict } from '../core/ports.ts';

/** A path no container or build may see, and what it is. */
export interface ForbiddenPath {
  path: string;
  /** Noun phrase for messages: "Berth's data directory, which holds ...". */
  what: string;
}

export interface HostPathGuardOptions {
  /** BERTH_ALLOWED_BIND_ROOTS: absolute directories under which host paths may be used. */
  allowedRoots: readonly string[];
  /** Refused whatever the roots say: these paths, anything below them, and anything that contains them. */
  forbidden: readonly ForbiddenPath[];
}

const HOW_TO_ALLOW = 'an admin allows directories by starting berth server with BERTH_ALLOWED_BIND_ROOTS=DIR[:DIR...] or --allowed-bind-roots DIR[:DIR...]';

/**
 * Decides on the server's own filesystem which host paths reach containers and builds. Every path is
 * resolved with realpath (a symlink is judged by where it leads), then must lie under an allowed root
 * and must neither be nor contain a forbidden path (the Docker socket, Berth's data directory...).
 * Roots and forbidden paths are resolved at each check, so a path that appears later is covered.
 */
export class HostPathGuard implements HostPathPolicy {
  constructor(private readonly o: HostPathGuardOptions) {}

  async bindSource(path: string): Promise<HostPathVerdict> {
    return this.check(path, 'bind-mount', 'or use a named volume');
  }

  async buildContext(context: string, dockerfile: string): Promise<HostPathVerdict> {
    const v = await this.check(context, 'build from', 'or push the app with git (a build from a commit needs no host directory)');
    if (v.refused !== undefined) return v;
    try {
      if (!(await stat(v.path)).isDirectory()) return { refused: `cannot build from "${context}": it is not a directory` };
    } catch (e) {
      return { refused: `cannot build from "${context}": ${errnoText(e)}` };
    }
    // "": the Dockerfile is given as text (dockerfile_inline), there is no file to check.
    if (dockerfile === '') return v;
    const df = join(v.path, dockerfile);
    let real: string;
    try {
      real = await realpath(df);
    } catch (e) {
      return { dockerfile: true, refused: `cannot build from "${context}": its Dockerfile ${dockerfile} ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist: add it, or set build.dockerfile' : `cannot be read (${errnoText(e)})`}` };
    }
    if (!within(v.path, real) || real === v.path) {
      return { dockerfile: true, refused: `cannot build from "${context}": its Dockerfile ${dockerfile} resolves to "${real}", outside the build context; keep the Dockerfile inside the context` };
    }
    return v;
  }

  private async check(path: string, verb: string, alternative: string): Promise<HostPathVerdict> {
    if (!isAbsolute(path)) return { refused: `cannot ${verb} "${path}": not an absolute path` };
    let real: string;
    try {
      real = await realpath(path);
    } catch (e) {
      return { refused: `cannot ${verb} "${path}": ${errnoText(e)}` };
    }
    const shown = real === normalize(path) ? `"${path}"` : `"${path}" (it resolves to "${real}")`;
    for (const f of this.o.forbidden) {
      const fr = await resolved(f.path);
      if (within(fr, real)) return { refused: `cannot ${verb} ${shown}: it is ${f.what}; Berth never allows it, whatever the allowed directories` };
      if (within(real, fr)) return { refused: `cannot ${verb} ${shown}: it contains ${f.what}; Berth never allows it, whatever the allowed directories` };
    }
    const roots = await Promise.all(this.o.allowedRoots.map(resolved));
    if (roots.some((r) => within(r, real))) return { path: real };
    const where = roots.length === 0
      ? 'this server allows no host directories (BERTH_ALLOWED_BIND_ROOTS is not set)'
      : `it is outside the directories this server allows (${this.o.allowedRoots.join(', ')})`;
    return { refused: `cannot ${verb} ${shown}: ${where}; ${HOW_TO_ALLOW}; ${alternative}` };
  }
}

async function resolved(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return normalize(p);
  }
}

function within(root: string, p: string): boolean {
  if (root === sep) return true;
  return p === root || p.startsWith(root + sep);
}

function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'it does not exist on the server (or a symlink in it leads nowhere): create it first';
  if (code === 'ENOTDIR') return 'a part of it is not a directory';
  if (code === 'ELOOP') return 'its symlinks form a loop';
  if (code === 'EACCES') return 'the server may not read it';
  return `it cannot be resolved (${code ?? String(e)})`;
}
