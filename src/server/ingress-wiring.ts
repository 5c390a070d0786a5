import { join } from 'node:path';
import type { Logger } from '../core/ports.ts';
import type { EventStore } from '../core/store.ts';
import { NginxIngress } from '../ingress/index.ts';
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
