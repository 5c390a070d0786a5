import type { Command } from 'commander';
import { clusterInit, clusterJoin, drainHost, edgeToken, labelHost, listEdgeHosts, listHosts, removeHost, type HostInfo } from '../../client/host-client.ts';
import { formatResources } from '../../core/placement.ts';
import { HOST_LABEL } from '../../core/ports.ts';

const POOL = HOST_LABEL.pool;
import { CliFailure, EXIT, connect, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

const cpus = (n: number): string => `${Math.round((n / 1e9) * 100) / 100}`;
const gib = (b: number): string => `${Math.round((b / 1024 ** 3) * 10) / 10}G`;

function hostRows(hosts: HostInfo[]): string {
  const rows = [['HOST', 'ADDRESS', 'POOL', 'STATE', 'ROLE', 'CPU (RESERVED/ALL)', 'MEMORY (RESERVED/ALL)', 'INSTANCES', 'LABELS']];
  for (const h of hosts) {
    const labels = Object.entries(h.labels).filter(([k]) => k !== POOL).map(([k, v]) => `${k}=${v}`).join(',') || '-';
    rows.push([h.name, h.address, h.pool, h.state + (h.message ? ` (${h.message})` : ''), h.role,
      `${cpus(h.reserved.nanoCpus)}/${cpus(h.capacity.nanoCpus)}`, `${gib(h.reserved.memoryBytes)}/${gib(h.capacity.memoryBytes)}`, String(h.instances), labels]);
  }
  return table(rows);
}

type EdgeHosts = Awaited<ReturnType<typeof listEdgeHosts>>;

/** A port flag's value: undefined when not given; a whole number 1-65535, else a usage error naming the flag. */
function portOption(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CliFailure(`${flag} "${v}" is not a port (1-65535)`, EXIT.usage);
  return n;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

function edgeRows(e: EdgeHosts, now: number): string {
  const rows = [['EDGE HOST', 'ADDRESS', 'INGRESS', 'GENERATION', 'LAST CONTACT']];
  for (const h of e.hosts) {
    const gen = h.applied === undefined ? '-' : h.appliedEpoch === e.epoch ? `${h.applied}/${e.generation}` : `${h.applied} (before a restart)`;
    rows.push([h.host, h.address, h.error ? `error: ${h.error}` : h.inSync ? 'in sync' : 'behind', gen, ago(now - h.lastContact)]);
  }
  return table(rows);
}

/** KEY=VALUE sets, KEY- removes (like kubectl label). */
export function parseLabelArgs(args: string[]): { set: Record<string, string>; remove: string[] } {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq > 0) set[a.slice(0, eq)] = a.slice(eq + 1);
    else if (a.endsWith('-') && a.length > 1) remove.push(a.slice(0, -1));
    else throw new CliFailure(`label "${a}": write KEY=VALUE to set a label or KEY- to remove one (e.g. ${POOL}=a, zone-)`, EXIT.usage);
  }
  return { set, remove };
}

/** `berth hosts`, `berth host add|label|drain|rm`, `berth cluster init`: many hosts on Docker Swarm. */
export function registerHosts(program: Command): void {
  program.command('hosts')
    .description('hosts instances run on: address, pool, state (ready / draining / down), role, CPU and memory reserved of capacity, instances, labels')
    .addHelpText('after', `
One-host mode (a plain Docker Engine) shows the one host; cluster mode (Berth's engine is a Swarm
manager) shows every node. A host's pool is its label ${POOL} (default: "default").

Examples:
  berth hosts
  berth --json hosts`)
    .action(async () => {
      const g = program.opts<GlobalOpts>();
      const c = connect(g);
      const [r, edge] = await Promise.all([listHosts(c), listEdgeHosts(c)]);
      output(g, { ...r, edge }, () => {
        console.log(hostRows(r.hosts));
        if (edge.hosts.length > 0) console.log(`\n${edgeRows(edge, Date.now())}`);
        if (r.mode === 'single') console.log('\none-host mode: berth cluster init --advertise-addr ADDR makes this host a Swarm manager');
      });
    });

  const host = program.command('host').description('add, label, drain or remove a host (cluster mode)');
  host.command('add')
    .description('print the command that joins a new host to the cluster, and what the host needs')
    .option('--pool <pool>', 'the pool the new host will be in; edge: it runs the ingress (berth edge)')
    .option('--name <host>', 'with --pool edge: the new host\'s name (its edge token is bound to it)')
    .option('--port <port>', 'with --pool edge: the port its nginx listens on (default 80)')
    .option('--https-port <port>', 'with --pool edge: the port its nginx serves HTTPS on, for routes with certificates (default 443)')
    .option('--address <addr>', 'the new host\'s address: adds the step that lets Berth reach its Docker engine over TLS (logs, stats, reload, exec)')
    .addHelpText('after', `
An edge host runs nginx fed by this control plane (berth edge): it serves every route and keeps
serving what it last had while the control plane is away. It needs no Swarm membership.

Examples:
  berth host add --pool a --address 10.0.0.6
  berth host add --pool edge --name edge-1 --port 80
  berth host add --pool edge --name edge-2 --port 8080 --https-port 8443`)
    .action(async (o: { pool?: string; name?: string; port?: string; httpsPort?: string; address?: string }) => {
      const g = program.opts<GlobalOpts>();
      const c = connect(g);
      if (o.pool === 'edge') {
        if (!o.name) throw new CliFailure('--pool edge needs --name HOST: the edge token is bound to the host\'s name', EXIT.usage);
        const port = portOption('--port', o.port);
        const httpsPort = portOption('--https-port', o.httpsPort);
        if ((port ?? 80) === (httpsPort ?? 443)) {
          throw new CliFailure(`--https-port ${httpsPort ?? 443} is the same as --port ${port ?? 80}: HTTP and HTTPS need a port each`, EXIT.usage);
        }
        const r = await edgeToken(c, o.name, port, httpsPort);
        output(g, r, () => {
          r.steps.forEach((s, i) => console.log(`${i + 1}. ${s}`));
          console.log(`\nToken of ${r.host}:\n${r.token}\n\nCommand (what the unit runs):\n${r.command}\n\n/etc/systemd/system/berth-edge.service:\n${r.unit}`);
          console.error('The edge token is a credential: it reads the route table (hosts, paths, backend addresses) and, over TLS, the certificates and keys of its routes; nothing else.');
        });
        return;
      }
      if (o.name || o.port || o.httpsPort) throw new CliFailure('--name, --port and --https-port are for --pool edge', EXIT.usage);
      const r = await clusterJoin(c, o.pool, o.address);
      output(g, r, () => {
        r.steps.forEach((s, i) => console.log(`${i + 1}. ${s}`));
        console.error('\nThe join token is a credential: anyone holding it can add a host to this cluster.');
        if (o.address) console.error('The command also carries the new host\'s engine key: run it on that host only, and do not keep it.');
      });
    });
  host.command('label')
    .argument('<host>', 'host name or id (berth hosts)')
    .argument('<labels...>', 'KEY=VALUE to set, KEY- to remove')
    .description(`set or remove a host's labels; ${POOL}=POOL puts it in a pool`)
    .addHelpText('after', `
Examples:
  berth host label th2 ${POOL}=a zone=z1
  berth host label th2 zone-`)
    .action(async (name: string, args: string[]) => {
      const g = program.opts<GlobalOpts>();
      const { set, remove } = parseLabelArgs(args);
      const r = await labelHost(connect(g), name, set, remove);
      output(g, r, () => console.log(`${r.host.name}: pool ${r.host.pool}, labels ${Object.entries(r.host.labels).map(([k, v]) => `${k}=${v}`).join(' ') || '(none)'}`));
    });
  host.command('drain')
    .argument('<host>', 'host name or id')
    .option('--undo', 'make the host ready again')
    .description('drain a host: nothing new lands there, and its instances move to other hosts of their pool')
    .action(async (name: string, o: { undo?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const r = await drainHost(connect(g), name, !o.undo);
      output(g, r, () => console.log(`${r.host.name} is ${r.host.state} (${r.host.instances} instances there)`));
    });
  host.command('rm')
    .argument('<host>', 'host name or id')
    .option('--force', 'remove it even while it is ready or runs instances')
    .description('remove a host from the cluster (drain it first, or it must be down)')
    .action(async (name: string, o: { force?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      await removeHost(connect(g), name, o.force === true);
      output(g, { removed: name }, () => console.log(`removed host ${name}`));
    });

  const cluster = program.command('cluster').description('cluster mode on Docker Swarm');
  cluster.command('init')
    .requiredOption('--advertise-addr <ip>', 'the address of this host that the other hosts reach')
    .description("make the engine's host the manager of a new Swarm (Berth adopts an existing Swarm by itself when its engine is a manager)")
    .action(async (o: { advertiseAddr: string }) => {
      const g = program.opts<GlobalOpts>();
      const r = await clusterInit(connect(g), o.advertiseAddr);
      output(g, r, () => {
        const h = r.hosts[0];
        console.log(`cluster mode: ${h?.name ?? 'this host'} manages a Swarm on ${o.advertiseAddr}:2377 (${h ? formatResources(h.capacity) : ''}). Add hosts with berth host add.`);
      });
    });
}
