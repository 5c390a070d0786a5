import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Unauthorized } from '../core/errors.ts';
import { EDGE_HOST_RE, EDGE_HOST_RULE, edgeToken, edgeUnit, parseEdgeToken, type EdgeFeedPort } from '../core/edge.ts';
import { sameDigest } from '../auth/index.ts';

export interface EdgeRouteDeps {
  feed: EdgeFeedPort;
  /** The secret of a host's edge token (an HMAC of the server's key: never stored, the same across restarts). */
  secretOf(host: string): string;
  /** The control plane's URL as edge hosts reach it (printed in the agent's command line). */
  controlUrl(): string;
}

export const edgeConfigQuery = z.strictObject({
  /** The epoch and generation the agent's nginx serves (absent: nothing yet). */
  epoch: z.string().regex(/^[0-9a-f]{1,32}$/, 'the epoch of a previous answer (hex)').optional(),
  generation: z.coerce.number().int().min(0).optional(),
  /** Seconds to hold the poll when nothing changed (0: answer at once). */
  wait: z.coerce.number().int().min(0).max(60).default(25),
  /** The agent's last failure to apply, shown by `berth hosts`. */
  error: z.string().max(300).optional(),
});
export const edgeTokenBody = z.strictObject({
  host: z.string().regex(EDGE_HOST_RE, EDGE_HOST_RULE),
  /** Port the edge host's nginx listens on (printed in the unit; default 80). */
  port: z.number().int().min(1).max(65535).default(80),
});

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
    d.feed.contact(given.host, {
      address: req.ip,
      ...(q.generation !== undefined ? { applied: q.generation } : {}),
      ...(q.epoch !== undefined ? { appliedEpoch: q.epoch } : {}),
      ...(q.error ? { error: q.error } : {}),
    });
    const gone = new AbortController();
    reply.raw.once('close', () => gone.abort());
    const have = { ...(q.epoch !== undefined ? { epoch: q.epoch } : {}), ...(q.generation !== undefined ? { generation: q.generation } : {}) };
    return d.feed.wait(have, q.wait * 1000, gone.signal);
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
    const command = `berth edge --control ${control} --token-file ${tokenFile} --port ${b.port} --data-dir /var/lib/berth-edge`;
    const steps = [
      `On ${b.host}: install nginx with Lua (Debian: apt-get install nginx-light libnginx-mod-http-lua lua-resty-core) and Berth, and stop Debian's own nginx service (systemctl disable --now nginx): the agent runs its own.`,
      `On ${b.host}, as root: install -D -m 600 /dev/stdin ${tokenFile} <<< 'TOKEN' (the token below; it is a credential for this host's edge config only).`,
      `Let ${b.host} reach the control plane at ${control}, and the hosts its routes' instances run on.`,
      `On ${b.host}: write the unit below to /etc/systemd/system/berth-edge.service, then systemctl daemon-reload && systemctl enable --now berth-edge.`,
      'Here: berth hosts (the edge host shows the generation it serves and its last contact).',
    ];
    return reply.status(201).send({ host: b.host, token, control, command, steps, unit: edgeUnit({ control, tokenFile, port: b.port }) });
  });
}
