import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NotFound } from '../core/errors.ts';
import type { CertificatesPort } from '../core/ports.ts';

/** An uploaded certificate: the PEM chain (the host's certificate first) and its unencrypted PEM private key. */
export const uploadBody = z.object({
  cert: z.string().min(1, 'the PEM certificate chain').max(65_536),
  key: z.string().min(1, 'the PEM private key').max(65_536),
});
const hostParam = z.object({ host: z.string().min(1).max(253) });

/**
 * Certificates of routes' hosts (tls/CertManager through CertificatesPort): list them with what
 * Berth is doing about each, upload one (checked before anything is stored), remove one, ask for an
 * ACME renewal. None of these waits for a CA.
 */
export function registerCertRoutes(app: FastifyInstance, d: { certs: CertificatesPort }): void {
  app.get('/v1/certs', async () => ({ certs: d.certs.list() }));
  app.put('/v1/certs/:host', async (req) => {
    const { host } = hostParam.parse(req.params);
    const b = uploadBody.parse(req.body);
    return d.certs.upload(host, b.cert, b.key);
  });
  app.delete('/v1/certs/:host', async (req, reply) => {
    const { host } = hostParam.parse(req.params);
    if (!(await d.certs.remove(host))) throw new NotFound(`no certificate stored for ${host}: see \`berth certs\``);
    return reply.status(204).send();
  });
  app.post('/v1/certs/:host/renew', async (req, reply) => {
    const { host } = hostParam.parse(req.params);
    return reply.status(202).send(d.certs.renew(host));
  });
}
