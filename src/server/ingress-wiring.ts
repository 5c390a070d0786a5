import { join } from 'node:path';
import type { Logger } from '../core/ports.ts';
import type { EventStore, InstanceRecord } from '../core/store.ts';
import { NginxIngress, cutConnections, type EdgeFeed } from '../ingress/index.ts';
import type { ServerConfig } from './config.ts';

/**
 * Adopts the running nginx (or starts one). A route the ingress leaves out is that app's problem,
 * reported to it as an event; the other routes stay live.
 */
export async function startIngress(cfg: ServerConfig, events: EventStore, acmeChallengeDir: string, logger: Logger, adminToken: string): Promise<NginxIngress> {
  const ingress = new NginxIngress({
    prefix: join(cfg.dataDir, 'nginx'), listenPort: cfg.ingressPort, listenAddress: cfg.ingressAddress, adminPort: cfg.ingressAdminPort,
    ...(cfg.ingressHttpsPort !== undefined ? { httpsPort: cfg.ingressHttpsPort } : {}), acmeChallengeDir,
    nginxBin: cfg.nginxBin, logger: logger.child({ component: 'ingress' }),
    // Derived from the secret key (the caller's SecretBox.mac): the same across restarts, so an adopted
    // nginx keeps taking backend updates; never stored (nginx keeps only its hash).
    adminToken,
    onRoutesRefused: (problems) => {
      for (const p of problems) {
        const o = p.owner ?? { app: '', env: '', service: '' };
        events.addEvent({ app: o.app, env: o.env, service: o.service, instance: '', kind: 'route.refused',
          message: `route ${p.host ?? '(any host)'}${p.path}${o.service ? ` of ${o.service}` : ''} is not served: ${p.message}` });
      }
    },
  });
  await ingress.start();
  return ingress;
}

/** Whether an instance found unreachable is one whose connections are cut (here and on edge hosts): of another host, not on loopback. */
export function remoteUnreachable(inst: InstanceRecord, localHost: string): inst is InstanceRecord & { address: string; port: number } {
  return !!inst.address && !!inst.port && inst.host !== localHost && !inst.address.startsWith('127.') && inst.address !== '::1';
}

/**
 * An instance found unreachable from this host (its host died, its link is cut): nginx's connections
 * to it (same network namespace) are cut, so idempotent requests already sent there are retried on
 * another backend at once instead of waiting for the read timeout (ingress/cut-connections.ts).
 * Only an instance of another host: on this host (alive: its loopback ports, its app networks'
 * bridge addresses, every instance of a one-host install) a connect timeout is an app whose accept
 * queue is full, and a cut would fail the POSTs it is still working on.
 */
export function cutUnreachable(inst: InstanceRecord, localHost: string, events: EventStore, logger: Logger, cut = cutConnections): void {
  if (!remoteUnreachable(inst, localHost)) return;
  const where = `${inst.address}:${inst.port}`;
  cut([{ address: inst.address, port: inst.port }]).then((n) => {
    logger.info({ instance: inst.id, where, cut: n }, 'connections to an unreachable instance cut');
    if (n > 0) {
      events.addEvent({ app: inst.app, env: inst.env, service: inst.service, instance: inst.id, kind: 'ingress.cut',
        message: `instance ${inst.id} is unreachable (${where}): ${n} connection${n === 1 ? '' : 's'} to it cut, idempotent requests in flight retried on another instance` });
    }
  }, (err: unknown) => logger.warn({ instance: inst.id, where, err: String(err) }, 'connections to an unreachable instance not cut; requests in flight there wait for the read timeout'));
}

/** Edge hosts' reports of the connections they cut (ingress/edge-agent.ts): one `ingress.cut` event each, naming the edge host. */
export function recordEdgeCuts(edge: Pick<EdgeFeed, 'onCut'>, events: EventStore): void {
  edge.onCut((host, c, owner) => {
    const inst = owner as Partial<InstanceRecord> | undefined;
    const where = `${c.address}:${c.port}`;
    events.addEvent({ app: inst?.app ?? '', env: inst?.env ?? '', service: inst?.service ?? '', instance: inst?.id ?? '', kind: 'ingress.cut',
      message: `edge host ${host}: ${inst?.id ? `instance ${inst.id}` : 'a backend'} is unreachable (${where}): ${c.connections} connection${c.connections === 1 ? '' : 's'} to it cut, idempotent requests in flight retried on another instance` });
  });
}
