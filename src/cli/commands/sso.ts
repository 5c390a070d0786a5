import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { putSsoProvider, removeSsoProvider, ssoProviders, type SsoProviderView } from '../../client/auth-client.ts';
import { CliFailure, EXIT, connect, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { readPassword } from '../password-input.ts';

/** `GROUP=TEAM:ROLE[:APP[:ENV]]` → a mapping. */
function mapping(raw: string): Record<string, string> {
  const m = /^(.+)=([^:=]+):([^:=]+)(?::([^:=]+))?(?::([^:=]+))?$/.exec(raw);
  if (!m) throw new CliFailure(`--map ${raw}: write GROUP=TEAM:ROLE[:APP[:ENV]], e.g. --map devs=web:deployer or --map admins=*:owner`, EXIT.usage);
  return { group: m[1]!, team: m[2]!, role: m[3]!, app: m[4] ?? '*', env: m[5] ?? '*' };
}

function rows(ps: SsoProviderView[]): string {
  const r = [['NAME', 'KIND', 'SHOWN AS', 'ENABLED', 'WHERE', 'MAPPINGS', 'SECRET']];
  for (const p of ps) {
    r.push([p.name, p.kind, p.displayName, p.enabled ? 'yes' : 'no', p.oidc?.issuer ?? p.ldap?.url ?? '-',
      p.mappings.map((m) => `${m.group}→${m.role}@${m.team}${m.app === '*' ? '' : `/${m.app}`}${m.env === '*' ? '' : `:${m.env}`}`).join(', ') || '-',
      p.secretSet ? 'set' : '-']);
  }
  return table(r);
}

/** `berth sso list|set|rm`: single sign-on providers (owners). */
export function registerSso(program: Command): void {
  const s = program.command('sso').description('single sign-on providers (OpenID Connect, LDAP) and how their groups map to team roles (owners)');
  s.command('list')
    .description('the providers, their group → team mappings and whether a secret is set (never the secret)')
    .action(async () => {
      const g = program.opts<GlobalOpts>();
      const { providers } = await ssoProviders(connect(g));
      output(g, providers, () => console.log(providers.length ? rows(providers) : 'no single sign-on provider: add one with `berth sso set NAME -f provider.yaml`'));
    });
  s.command('set')
    .argument('<name>', 'the provider\'s name (in URLs: /v1/sso/NAME/callback; `berth login --sso NAME`)')
    .requiredOption('-f, --file <file>', 'the provider as YAML or JSON: kind, displayName, oidc or ldap settings, mappings, allowedDomains (see README "Single sign-on")')
    .option('--secret-stdin', "read the OIDC client secret or the LDAP service account's password from stdin (else kept as stored)")
    .option('--map <GROUP=TEAM:ROLE[:APP[:ENV]]>', 'add a group mapping (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--disable', 'keep the provider but refuse its logins')
    .description('create or replace a provider (a replace keeps the stored secret unless one is given)')
    .addHelpText('after', `
Examples:
  berth sso set corp -f keycloak.yaml --secret-stdin < client-secret.txt
  berth sso set dir -f ldap.yaml --map devs=web:deployer --map ops=web:operator:*:prod`)
    .action(async (name: string, o: { file: string; secretStdin?: boolean; map: string[]; disable?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      let text: string;
      try {
        text = readFileSync(o.file, 'utf8');
      } catch (err) {
        throw new CliFailure(`--file ${o.file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, EXIT.usage);
      }
      let body: unknown;
      try {
        body = parseYaml(text);
      } catch (err) {
        throw new CliFailure(`${o.file}: not YAML or JSON: ${(err as Error).message}`, EXIT.usage);
      }
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new CliFailure(`${o.file}: must be a mapping with kind, oidc or ldap, mappings, ...`, EXIT.usage);
      const b = body as Record<string, unknown>;
      if (o.map.length) b.mappings = [...(Array.isArray(b.mappings) ? b.mappings : []), ...o.map.map(mapping)];
      if (o.disable) b.enabled = false;
      if (o.secretStdin) b.secret = await readPassword({ stdin: true });
      const { provider } = await putSsoProvider(connect(g), name, b);
      output(g, provider, () => console.log(`single sign-on provider ${provider.name} (${provider.kind}) saved${provider.enabled ? '' : ', disabled'}: ${provider.mappings.length} group mapping(s)${provider.secretSet ? ', secret set' : ''}`
        + (provider.kind === 'oidc' ? `\nregister this redirect URI at the provider: <berth URL>/v1/sso/${provider.name}/callback` : '')));
    });
  s.command('rm')
    .argument('<name>')
    .description('remove a provider: the grants its group mappings gave are revoked and the sessions of its users end')
    .action(async (name: string) => {
      const g = program.opts<GlobalOpts>();
      const r = await removeSsoProvider(connect(g), name);
      output(g, r, () => console.log(`removed ${name}: ${r.grantsRevoked} grant(s) revoked, ${r.sessionsEnded} session(s) ended`));
    });
}
