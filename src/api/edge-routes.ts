import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Unauthorized } from '../core/errors.ts';
import {
  CUT_REPORT_RE, CUT_REPORT_RULE, parseCutReport, EDGE_HOST_RE, EDGE_HOST_RULE, edgeAnswer, edgeToken, edgeUnit, parseEdgeToken, type EdgeCert, type EdgeCertRef, type EdgeFeedPort,
} from '../core/edge.ts';
import { sameDigest } from '../auth/index.ts';

export interface EdgeRouteDeps {
  feed: EdgeFeedPort;
  /** The secret of a host's edge token (an HMAC of the server's key: never stored, the same across restarts). */
  secretOf(host: string): string;
  /** The control plane's URL as edge hosts reach it (printed in the agent's command line). */
  controlUrl(): string;
  /** The certificates (with keys, opened from tls.db) of these hosts; undefined: no certificates at all. */
  certificates?(refs: EdgeCertRef[]): EdgeCert[];
  /**
   * Whether the poll reached this server over TLS (default: its socket is a TLS socket; no header is
   * trusted for it). Certificate keys are only ever sent over TLS.
   */
  overTls?(req: FastifyRequest): boolean;
}

function socketIsTls(req: FastifyRequest): boolean {
  return (req.raw.socket as { encrypted?: boolean }).encrypted === true;
}

export const edgeConfigQuery = z.strictObject({
  /** The epoch and generation the agent's nginx serves (absent: nothing yet). */
  epoch: z.string().regex(/^[0-9a-f]{1,32}$/, 'the epoch of a previous answer (hex)').optional(),
  generation: z.coerce.number().int().min(0).optional(),
  /** Seconds to hold the poll when nothing changed (0: answer at once). */
  wait: z.coerce.number().int().min(0).max(60).default(25),
  /** The agent's last failure to apply, shown by `berth hosts`. */
  error: z.string().max(300).optional(),
  /** Connections the agent cut to backends the feed named unreachable, since its last poll: recorded as `ingress.cut` events naming the host. */
  cut: z.string().max(1100).regex(CUT_REPORT_RE, CUT_REPORT_RULE).optional(),
});
export const edgeTokenBody = z.strictObject({
  host: z.string().regex(EDGE_HOST_RE, EDGE_HOST_RULE),
  /** Port the edge host's nginx listens on (printed in the unit; default 80). */
  port: z.number().int().min(1).max(65535).default(80),
  /** Port it serves HTTPS on for routes with certificates (default 443). */
  httpsPort: z.number().int().min(1).max(65535).default(443),
}).refine((b) => b.port !== b.httpsPort, { message: 'must differ from port', path: ['httpsPort'] });

/**
 * Edge hosts (issue 13 item 4): `GET /v1/edge/config` is the agents' long poll (authorized by the
 * host's own edge token, which is no credential anywhere else: every other route answers it 401),
 * `GET /v1/edge/hosts` what each agent last reported, `POST /v1/edge/tokens` a host's token and the
 * systemd unit that runs its agent (owners).
 */
export function registerEdgeRoutes(api: FastifyInstance, d: EdgeRouteDeps): void {
  api.get('/v1/edge/config', async (req, reply) => {
    const auth = req.headers.authorization;
    const given = typeof auth === 'string' && auth.startsWith('Bearer ') ? parseEdgeToken(auth.slice(7).trim()) : undefined;
    if (!given || !sameDigest(given.secret, d.secretOf(given.host))) {
      throw new Unauthorized('an edge host\'s token is needed (Authorization: Bearer berth-edge.HOST.SECRET): `berth host add --pool edge --name HOST` prints it');
    }
    const q = edgeConfigQuery.parse(req.query ?? {});
    const tls = (d.overTls ?? socketIsTls)(req);
    if (q.cut) d.feed.reportCuts(given.host, parseCutReport(q.cut));
    d.feed.contact(given.host, {
      address: req.ip,
      ...(q.generation !== undefined ? { applied: q.generation } : {}),
      ...(q.epoch !== undefined ? { appliedEpoch: q.epoch } : {}),
      ...(q.error ? { error: q.error } : {}),
      ...(!tls && d.feed.current().certs.length > 0 ? { certsWithheld: true } : {}),
    });
    const gone = new AbortController();
    reply.raw.once('close', () => gone.abort());
    const have = { ...(q.epoch !== undefined ? { epoch: q.epoch } : {}), ...(q.generation !== undefined ? { generation: q.generation } : {}) };
    // Keys are opened only for this answer, and only when it travels over TLS.
    return edgeAnswer(await d.feed.wait(have, q.wait * 1000, gone.signal), tls, d.certificates);
  });

  api.get('/v1/edge/hosts', async () => {
    const c = d.feed.current();
    return { epoch: c.epoch, generation: c.generation, hosts: d.feed.hosts() };
  });

  api.post('/v1/edge/tokens', async (req, reply) => {
    const b = edgeTokenBody.parse(req.body ?? {});
    const token = edgeToken(b.host, d.secretOf(b.host));
    const control = d.controlUrl();
    const tokenFile = '/etc/berth/edge.token';
    const command = `berth edge --control ${control} --token-file ${tokenFile} --port ${b.port} --https-port ${b.httpsPort} --data-dir /var/lib/berth-edge`;
    const steps = [
      `On ${b.host}: install nginx with Lua (Debian: apt-get install nginx-light libnginx-mod-http-lua lua-resty-core) and Berth, and stop Debian's own nginx service (systemctl disable --now nginx): the agent runs its own.`,
      `On ${b.host}, as root: install -D -m 600 /dev/stdin ${tokenFile} <<< 'TOKEN' (the token below; it is a credential for this host's edge config only).`,
      `Let ${b.host} reach the control plane at ${control}, and the hosts its routes' instances run on.`,
      `On ${b.host}: write the unit below to /etc/systemd/system/berth-edge.service, then systemctl daemon-reload && systemctl enable --now berth-edge.`,
      'Here: berth hosts (the edge host shows the generation it serves and its last contact).',
    ];
    if (!control.startsWith('https:')) {
      steps.splice(2, 0, `The control plane's API is plain HTTP (${control}): ${b.host} will get no certificate keys over it and serves routes with certificates over HTTP only. Serve the API over TLS (BERTH_API_TLS_CERT/KEY) for HTTPS on edge hosts.`);
    }
    return reply.status(201).send({ host: b.host, token, control, command, steps, unit: edgeUnit({ control, tokenFile, port: b.port, httpsPort: b.httpsPort }) });
  });
}
