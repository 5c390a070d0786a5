import { InvalidInput } from '../core/errors.ts';
import type { HostPathPolicy } from '../core/ports.ts';
import type { AppSpec } from '../core/spec/types.ts';

/** One host path the server refused: where in the spec (`services.web.volumes[0]`) and why. */
export interface HostPathRefusal {
  path: string;
  message: string;
}

/**
 * Checks every host path of a spec (bind-mount sources, build contexts) with the server's policy and
 * returns the spec with each path resolved (symlinks followed: what is checked is what gets mounted).
 * Every refusal is reported at once; the error's `details.refused` lists them by spec path, which the
 * CLI maps back to file:line:col. `builds: false` leaves build contexts alone (a push build's are
 * directories of a commit, built already).
 * @throws InvalidInput when any host path is refused
 */
export async function checkHostPaths(policy: HostPathPolicy, spec: AppSpec, opts: { builds?: boolean } = {}): Promise<AppSpec> {
  const out = structuredClone(spec);
  const refused: HostPathRefusal[] = [];
  await Promise.all(Object.entries(out.services).map(async ([name, svc]) => {
    await Promise.all(svc.volumes.map(async (v, i) => {
      if (v.type !== 'bind') return;
      const r = await policy.bindSource(v.source);
      if (r.refused !== undefined) refused.push({ path: `services.${name}.volumes[${i}]`, message: r.refused });
      else v.source = r.path;
    }));
    if (svc.build && opts.builds !== false) {
      const b = svc.build;
      const r = await policy.buildContext(b.context, b.dockerfileInline !== undefined ? '' : b.dockerfile);
      if (r.refused !== undefined) refused.push({ path: `services.${name}.build.${r.dockerfile ? 'dockerfile' : 'context'}`, message: r.refused });
      else b.context = r.path;
    }
  }));
  if (refused.length === 0) return out;
  refused.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  throw new InvalidInput(refused.map((r) => `spec.${r.path}: ${r.message}`).join('\n'), { details: { refused } });
}
