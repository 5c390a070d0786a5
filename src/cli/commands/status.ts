import type { Command } from 'commander';
import type { ServiceView } from '../../client/index.ts';
import { crashSummary } from '../../core/health-notes.ts';
import { ago, connect, table, type GlobalOpts } from '../context.ts';

export function registerStatus(program: Command): void {
  program.command('status')
    .argument('[app]', 'app name; all apps when omitted')
    .description('show apps, services and instances (desired vs running, health, release, ports)')
    .option('--env <env>', 'only this environment')
    .action(async (app: string | undefined, o: { env?: string }) => {
      const g = program.opts<GlobalOpts>();
      const client = connect(g);
      if (!app) {
        const [{ apps }, ping] = await Promise.all([client.apps(), client.ping().catch(() => undefined)]);
        const ingress = ping?.ingressBackendUpdates;
        if (g.json) return void console.log(JSON.stringify({ apps, ...(ingress ? { ingress: { backendUpdates: ingress.mode, ...(ingress.reason ? { reason: ingress.reason } : {}) } } : {}) }));
        // Said here because it costs every deploy a reload, and how to fix it is one install away.
        const note = ingress?.mode === 'reload' ? `\ningress: backend changes reload nginx (${ingress.reason ?? 'no Lua balancer'})` : '';
        if (apps.length === 0) return void console.log(`no apps yet: deploy one with \`berth deploy -f compose.yaml\`${note}`);
        const rows = [['APP', 'ENV', 'SERVICE', 'STATUS', 'READY', 'RELEASE', 'DETAIL']];
        for (const a of apps) for (const s of a.services) if (!o.env || s.env === o.env) rows.push(serviceRow(s, true));
        return void console.log(table(rows) + note);
      }
      const st = await client.app(app, o.env);
      if (g.json) return void console.log(JSON.stringify(st));
      const rows = [['ENV', 'SERVICE', 'STATUS', 'READY', 'RELEASE', 'DETAIL']];
      for (const s of st.services) rows.push(serviceRow(s, false));
      console.log(table(rows));
      for (const s of st.services) if (s.strategyReason) console.log(`${s.env}/${s.name}: ${s.strategyReason}`);
      // Many hosts: a stateful service stays with its volumes; only `berth failover` moves it.
      for (const s of st.services) if (s.pinned) console.log(`${s.env}/${s.name}: ${s.pinned.text}; \`berth failover ${app} ${s.name} --env ${s.env} --to HOST\` moves it (its volumes start empty there)`);
      for (const s of st.services) for (const w of s.warnings ?? []) console.log(`warning: ${s.env}/${w}`);
      console.log('');
      const irows = [['INSTANCE', 'SERVICE', 'STATE', 'HEALTH', 'HOST', 'ADDRESS', 'REL', 'CONTAINER', 'AGE', 'LAST CHECK']];
      for (const s of st.services) {
        for (const i of s.instances) {
          irows.push([i.id, s.name, i.state, i.health, i.host, `${i.address}:${i.port}`, String(i.release), (i.containerId ?? '-').slice(0, 12),
            i.startedAt ? ago(i.startedAt) : '-', i.check ? `${i.check.text}${i.check.ok ? '' : ` (for ${ago(i.check.since)})`}` : '-']);
        }
      }
      console.log(table(irows));
      // What a crashed instance printed last is usually why it crashed.
      for (const s of st.services) {
        if (!s.lastCrash) continue;
        console.log(`\n${s.name}: instance ${s.lastCrash.instance} ${crashSummary(s.lastCrash)} (${ago(s.lastCrash.at)} ago)${s.lastCrash.output.length ? '; its last output:' : ''}`);
        for (const l of s.lastCrash.output) console.log(`  | ${l}`);
      }
    });
}

function serviceRow(s: ServiceView, withApp: boolean): string[] {
  const row = [s.env, s.name, s.status, `${s.healthy}/${s.desired}`, `${s.release.seq} (${s.release.status})`, s.detail];
  return withApp ? [s.app, ...row] : row;
}
