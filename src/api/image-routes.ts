import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Conflict } from '../core/errors.ts';
import type { GcReportView, ImageListView } from '../core/image-retention.ts';
import { NAME_PATTERN } from '../core/spec/names.ts';
import type { KnownApps } from './known.ts';

/** What the routes need of the image janitor (images/ImageJanitor). */
export interface ImageCatalog {
  list(app?: string): Promise<ImageListView>;
  collect(o: { keep?: number; dryRun?: boolean }): Promise<GcReportView>;
}

export interface ImageRouteDeps {
  /** Undefined when Berth's registry did not start (docker-registry missing): the routes say so. */
  images: ImageCatalog | undefined;
  /** `?app=` of an app that does not exist is a 404 with a did-you-mean. */
  known?: KnownApps;
}

const appName = z.string().regex(NAME_PATTERN, 'an app name: lower-case letters, digits and dashes').max(63);
export const listQuery = z.object({ app: appName.optional() });
export const gcBody = z.object({
  keep: z.number().int('keep must be a whole number').min(1, 'keep must be at least 1: the newest image of a service is what a build just pushed').max(1000).optional(),
  dryRun: z.boolean().optional(),
}).strict();

function need(d: ImageRouteDeps): ImageCatalog {
  if (!d.images) {
    throw new Conflict('Berth\'s image registry is not running (docker-registry is not installed or failed to start; see the server log): there are no registry images');
  }
  return d.images;
}

/**
 * `GET /v1/images[?app=APP]`: every image in Berth's registry with its tags, build time, size, the
 * releases that use it and whether the retention rule keeps it (and why).
 * `POST /v1/images/gc {keep?, dryRun?}`: a collection now; returns what was deleted and kept.
 */
export function registerImageRoutes(app: FastifyInstance, d: ImageRouteDeps): void {
  app.get('/v1/images', async (req) => {
    const q = listQuery.parse(req.query);
    if (q.app) d.known?.requireApp(q.app);
    return need(d).list(q.app);
  });

  app.post('/v1/images/gc', async (req) => {
    const body = gcBody.parse(req.body ?? {});
    return need(d).collect(body);
  });
}
