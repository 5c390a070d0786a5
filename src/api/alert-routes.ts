import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NotFound } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { AlertRule, AlertStore } from '../core/store.ts';
import { durationMs } from './spec-schema.ts';

const duration = durationMs();
const name = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes').max(63);
export const body = z.object({
  metric: z.enum(['restarts', 'p95_latency', 'error_ratio', 'host_disk', 'host_memory']),
  threshold: z.number().nonnegative(),
  window: duration.default(300_000),
  for: duration.default(0),
  app: name.optional(),
  env: name.optional(),
  service: name.optional(),
  webhook: z.string().url().refine((u) => /^https?:\/\//.test(u), 'an http(s) URL').optional(),
});

/** Alert rules over HTTP: set (validated), list with their state, remove. */
export function registerAlertRoutes(app: FastifyInstance, d: { store: AlertStore; clock: Clock; changed: () => void }): void {
  app.put('/v1/alerts/:name', async (req) => {
    const { name: n } = z.object({ name }).parse(req.params);
    const b = body.parse(req.body);
    const rule: AlertRule = {
      metric: b.metric, threshold: b.threshold, windowMs: b.window, forMs: b.for,
      ...(b.app ? { app: b.app } : {}), ...(b.env ? { env: b.env } : {}), ...(b.service ? { service: b.service } : {}),
      ...(b.webhook ? { webhook: b.webhook } : {}),
    };
    d.store.putAlert(n, rule, d.clock.now());
    d.changed();
    return { name: n, rule };
  });
  app.get('/v1/alerts', async () => ({ alerts: d.store.listAlerts() }));
  app.delete('/v1/alerts/:name', async (req, reply) => {
    const { name: n } = req.params as { name: string };
    if (!d.store.deleteAlert(n)) throw new NotFound(`no alert ${n}`);
    return reply.status(204).send();
  });
}
