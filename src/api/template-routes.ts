import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NotFound } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { TemplateStore } from '../core/store.ts';
import { parseTemplate } from '../core/template.ts';

export const body = z.object({
  source: z.string().min(1).max(1_000_000),
  dest: z.string().regex(/^\/[^\0]*$/, 'an absolute path').refine((p) => !p.endsWith('/'), 'a file, not a directory'),
  check: z.array(z.string()).default([]),
  reload: z.array(z.string()).default([]),
});

/** Templates over HTTP: declare (validated: the template must parse), list, remove. */
export function registerTemplateRoutes(app: FastifyInstance, d: { store: TemplateStore; clock: Clock; changed: () => void }): void {
  app.put('/v1/templates/:name', async (req, reply) => {
    const { name } = z.object({ name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes') }).parse(req.params);
    const b = body.parse(req.body);
    parseTemplate(b.source, name); // throws InvalidInput naming line and column
    d.store.putTemplate({ name, ...b, createdAt: d.clock.now(), renderedAt: 0, lastError: '' });
    d.changed();
    return reply.status(200).send({ name, dest: b.dest });
  });
  app.get('/v1/templates', async () => ({ templates: d.store.listTemplates() }));
  app.delete('/v1/templates/:name', async (req, reply) => {
    const { name } = req.params as { name: string };
    if (!d.store.deleteTemplate(name)) throw new NotFound(`no template ${name}`);
    return reply.status(204).send();
  });
}
