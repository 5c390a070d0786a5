import { InvalidInput } from '../core/errors.ts';
import type { SpecFilesPort } from '../core/ports.ts';
import type { AppSpec, FileMountSpec, ServiceSpec } from '../core/spec/types.ts';
import type { ConfigStore } from './config-store.ts';

const DIGEST = /^[0-9a-f]{64}$/;

/**
 * Compose secrets and configs over the configuration store: values a client sent are sealed in
 * config.db and named by digest in the spec; `external` ones are configuration keys of the
 * environment, read at the release's config version like every configuration value.
 */
export class SpecFiles implements SpecFilesPort {
  constructor(private readonly config: ConfigStore) {}

  prepare(app: string, env: string, spec: AppSpec, opts: { keep: boolean }): AppSpec {
    const problems: string[] = [];
    const services: Record<string, ServiceSpec> = {};
    for (const [name, svc] of Object.entries(spec.services)) {
      const out: ServiceSpec = { ...svc };
      for (const kind of ['secrets', 'configs'] as const) {
        const list = svc[kind];
        if (!list) continue;
        out[kind] = list.map((m, i) => this.prepareOne(app, env, m, `spec.services.${name}.${kind}[${i}]`, kind, opts.keep, problems));
      }
      // A build's secrets are sealed the same way; the build reads them back through valueOf.
      if (svc.build?.secrets) {
        out.build = { ...svc.build, secrets: svc.build.secrets.map((b, i) => {
          if (!b.mount) {
            problems.push(`spec.services.${name}.build.secrets[${i}]: build secret "${b.source}" has no value: send its \`mount\` (the CLI reads it from the file or variable the Compose file names)`);
            return b;
          }
          return { ...b, mount: this.prepareOne(app, env, b.mount, `spec.services.${name}.build.secrets[${i}].mount`, 'secrets', opts.keep, problems) };
        }) };
      }
      services[name] = out;
    }
    if (problems.length > 0) throw new InvalidInput(`deploy refused, nothing was changed: ${problems.join('; ')}`);
    return { ...spec, services };
  }

  private prepareOne(app: string, env: string, m: FileMountSpec, field: string, kind: 'secrets' | 'configs', keep: boolean, problems: string[]): FileMountSpec {
    const what = `${kind === 'secrets' ? 'secret' : 'config'} "${m.name}"`;
    if (m.from === 'external') {
      const key = m.key!;
      if (!this.config.list(app, env).some((e) => e.key === key)) {
        problems.push(`${field}: ${what} is external and reads ${key} from Berth's configuration of ${app}/${env}, which is not set: ` +
          `set it with ${howToSet(app, env, key, kind)} (add --create before the app's first deploy), then deploy again`);
      }
      const { value: _v, digest: _d, ...rest } = m;
      return rest;
    }
    const { value, ...rest } = m;
    if (value !== undefined) {
      const digest = keep ? this.config.keepFile(app, env, value) : this.config.fileDigest(app, env, value);
      return { ...rest, digest };
    }
    if (m.digest !== undefined && DIGEST.test(m.digest) && this.config.hasFile(app, env, m.digest)) return rest;
    problems.push(`${field}: ${what} has no value: send its \`value\` (the CLI reads it from the ${m.from} the Compose file names)`);
    return rest;
  }

  valueOf(app: string, env: string, m: FileMountSpec, configVersion: number): string {
    if (m.from === 'external') {
      const v = this.config.resolved(app, env, configVersion).env[m.key!];
      if (v === undefined) {
        throw new InvalidInput(`${m.name}: ${m.key} is not set in the configuration of ${app}/${env} (version ${configVersion}): ` +
          `set it with ${howToSet(app, env, m.key!, 'secrets')}`);
      }
      return v;
    }
    if (m.digest === undefined) throw new InvalidInput(`${m.name}: the release names no value for it: deploy the Compose file again`);
    return this.config.openFile(app, env, m.digest);
  }
}

/** Configuration keys the app/env's services read as external secrets or configs: kept out of their environment variables. */
export function externalKeys(specs: Iterable<ServiceSpec>): Set<string> {
  const keys = new Set<string>();
  for (const s of specs) for (const m of [...s.secrets ?? [], ...s.configs ?? []]) if (m.from === 'external' && m.key) keys.add(m.key);
  return keys;
}

function howToSet(app: string, env: string, key: string, kind: 'secrets' | 'configs'): string {
  return kind === 'secrets' ? `\`printf %s "$VALUE" | berth secret set ${app} ${key} --env ${env}\`` : `\`berth config set ${app} ${key}=VALUE --env ${env}\``;
}
