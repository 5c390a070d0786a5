import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HOST_LABEL, type EngineHosts, type EngineTlsPort } from '../core/ports.ts';
import { NAME_PATTERN } from '../core/spec/names.ts';
import { Conflict } from '../core/errors.ts';

export interface HostRouteDeps {
  /** The engine's hosts role (the API never holds the whole engine). */
  hosts: EngineHosts;
  /** Issues a new host's engine certificate (`berth host add --address`). */
  engineTls?: EngineTlsPort;
  /** Berth's registry on the cluster network and the CA hosts trust it by (many hosts); absent: not served. */
  registryTrust?: () => { host: string; caPem: string } | undefined;
}

/** Docker's label keys: letters, digits, dots, dashes, underscores; no spaces or `=`. */
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const KEY_RULE = 'a label key: letters, digits, ".", "-", "_" (at most 128), like zone or io.berth.pool';
const labelKey = z.string().regex(LABEL_KEY, KEY_RULE);

export const labelsBody = z.strictObject({
  /** Labels to set, key → value. */
  set: z.record(z.string(), z.string().max(256, 'at most 256 characters')).default({}),
  /** Label keys to remove. */
  remove: z.array(labelKey).max(100).default([]),
}).superRefine((b, ctx) => {
  for (const k of Object.keys(b.set)) if (!LABEL_KEY.test(k)) ctx.addIssue({ code: 'custom', path: ['set'], message: `"${k}" is not ${KEY_RULE}` });
  const pool = b.set[HOST_LABEL.pool];
  if (pool !== undefined && !NAME_PATTERN.test(pool)) {
    ctx.addIssue({ code: 'custom', path: ['set', HOST_LABEL.pool], message: `a pool name: lower-case letters, digits and dashes, like "team-a" (not "${pool}")` });
  }
  for (const k of b.remove) if (k in b.set) ctx.addIssue({ code: 'custom', path: ['remove'], message: `${k} is both set and removed` });
  if (Object.keys(b.set).length === 0 && b.remove.length === 0) ctx.addIssue({ code: 'custom', path: ['set'], message: 'nothing to change: give labels to set or remove' });
});
export const drainBody = z.strictObject({ drain: z.boolean().default(true) });
export const removeQuery = z.strictObject({ force: z.enum(['true', 'false']).optional() });
const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const initBody = z.strictObject({
  advertiseAddr: z.string().regex(ipv4, 'an IPv4 address of this host that the other hosts reach, like 10.0.0.5').refine((a) => !a.startsWith('127.') && a !== '0.0.0.0', 'not a loopback or wildcard address: the other hosts must reach it'),
});
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$/;
export const joinQuery = z.strictObject({
  pool: z.string().regex(NAME_PATTERN, 'a pool name: lower-case letters, digits and dashes').optional(),
  /** The new host's address the control plane reaches it on: its engine's certificate names it. */
  address: z.string().refine((a) => ipv4.test(a) || HOST_NAME.test(a), 'the new host\'s IPv4 address (or DNS name) that this host reaches, like 10.0.0.6')
    .refine((a) => !a.startsWith('127.') && a !== '0.0.0.0' && a !== 'localhost', 'not a loopback or wildcard address: the control plane must reach the host there').optional(),
});

/** The engine's TLS port (Docker's registered port for its API over TLS). */
export const ENGINE_PORT = 2376;
const ENGINE_DIR = '/etc/docker/berth-tls';
const DROP_IN = '/etc/systemd/system/docker.service.d/berth-tls.conf';

/**
 * One shell command (for root on the new host) that installs the host engine's TLS material and lets
 * its dockerd also listen on tcp://ADDRESS:2376 with --tlsverify — only clients with a certificate of
 * Berth's cluster CA get in — through a systemd drop-in (Debian's docker.io runs `dockerd -H fd://`),
 * then restarts Docker. The key travels base64-encoded inside the command: the command is a credential.
 */
export function engineSetupCommand(address: string, m: { caPem: string; certPem: string; keyPem: string }): string {
  const b64 = (s: string): string => btoa(s);
  const exec = `/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock --tlsverify --tlscacert ${ENGINE_DIR}/ca.pem ` +
    `--tlscert ${ENGINE_DIR}/cert.pem --tlskey ${ENGINE_DIR}/key.pem -H tcp://${address}:${ENGINE_PORT}`;
  return `sh -euc 'umask 077; mkdir -p ${ENGINE_DIR} ${DROP_IN.replace(/\/[^/]+$/, '')}; ` +
    `echo ${b64(m.caPem)} | base64 -d > ${ENGINE_DIR}/ca.pem; ` +
    `echo ${b64(m.certPem)} | base64 -d > ${ENGINE_DIR}/cert.pem; ` +
    `echo ${b64(m.keyPem)} | base64 -d > ${ENGINE_DIR}/key.pem; ` +
    `printf "[Service]\\nExecStart=\\nExecStart=${exec}\\n" > ${DROP_IN}; chmod 644 ${DROP_IN}; ` +
    `systemctl daemon-reload; systemctl restart docker'`;
}

/** The steps `berth host add` prints: the join command (with its token) and what Berth needs of the host. */
export function joinSteps(token: string, managers: string[], pool: string | undefined, engine?: { address: string; setup: string }, registry?: { host: string; caPem: string }): { command: string; steps: string[] } {
  const join = `docker swarm join --token ${token}${engine ? ` --advertise-addr ${engine.address}` : ''} ${managers[0] ?? 'MANAGER:2377'}`;
  const command = engine ? `${engine.setup} && ${join}` : join;
  const steps = [
    'On the new host: install the Docker Engine (Debian: apt-get install docker.io) and start it.',
    `Let it reach the managers (${managers.join(', ')}) on 2377/tcp, and every host on 7946/tcp+udp and 4789/udp (Swarm's gossip and overlay traffic)` +
      (engine ? `; let this host reach it on ${engine.address}:${ENGINE_PORT}/tcp (its Docker engine, TLS: logs, stats, signals and exec of its instances).` : '.'),
    ...(registry ? [
      `Let it reach Berth's image registry on ${registry.host}/tcp and Berth's DNS on ${registry.host.replace(/:\d+$/, '')}:53 (udp+tcp).`,
      // The engine trusts Berth's registry by its CA for that registry alone (never insecure-registries).
      `On the new host, as root (its engine then trusts Berth's registry; no restart needed): ${registryTrustCommand(registry)}`,
    ] : []),
    engine
      ? `On the new host, as root (one command: installs its engine's TLS certificate from Berth's cluster CA, restarts Docker listening on ${engine.address}:${ENGINE_PORT} for Berth only, joins the Swarm): ${command}`
      : `On the new host, as root: ${command}`,
    ...(engine ? [] : ['Without --address the host joins but Berth cannot reach its engine (logs, stats, reload signals and exec of its instances): run berth host add --address ADDR for its TLS step.']),
    `Here: berth hosts (the new host appears as ready)${pool ? `, then berth host label HOSTNAME ${HOST_LABEL.pool}=${pool}` : `; it is in pool default until labelled: berth host label HOSTNAME ${HOST_LABEL.pool}=POOL`}.`,
  ];
  return { command, steps };
}

/** The shell command that makes a host's Docker engine trust Berth's registry: its CA in /etc/docker/certs.d/HOST:PORT/ca.crt. */
export function registryTrustCommand(r: { host: string; caPem: string }): string {
  const dir = `/etc/docker/certs.d/${r.host}`;
  return `mkdir -p ${dir} && printf '%s\\n' ${r.caPem.trim().split('\n').map((l) => `'${l}'`).join(' ')} > ${dir}/ca.crt`;
}

/**
 * Hosts (issue 13): `GET /v1/hosts` (the mode and every host: address, pool, labels, state, capacity,
 * reservations, instances), `PUT /v1/hosts/:host/labels`, `POST /v1/hosts/:host/drain`
 * (`{drain:false}`: ready again), `DELETE /v1/hosts/:host[?force=true]`, `POST /v1/cluster/init`
 * (one-host mode → a Swarm managed by this host), `GET /v1/cluster/join` (what `berth host add` prints).
 */
export function registerHostRoutes(api: FastifyInstance, d: HostRouteDeps): void {
  api.get('/v1/hosts', async () => {
    const [mode, hosts] = await Promise.all([d.hosts.clusterMode(), d.hosts.hosts()]);
    return { mode, hosts: hosts.sort((a, b) => a.pool.localeCompare(b.pool) || a.name.localeCompare(b.name)) };
  });

  api.put('/v1/hosts/:host/labels', async (req) => {
    const { host } = req.params as { host: string };
    const b = labelsBody.parse(req.body ?? {});
    const change: Record<string, string | null> = { ...b.set };
    for (const k of b.remove) change[k] = null;
    return { host: await d.hosts.labelHost(host, change) };
  });

  api.post('/v1/hosts/:host/drain', async (req) => {
    const { host } = req.params as { host: string };
    const b = drainBody.parse(req.body ?? {});
    return { host: await d.hosts.drainHost(host, b.drain) };
  });

  api.delete('/v1/hosts/:host', async (req, reply) => {
    const { host } = req.params as { host: string };
    const q = removeQuery.parse(req.query ?? {});
    await d.hosts.removeHost(host, { force: q.force === 'true' });
    return reply.status(204).send();
  });

  api.post('/v1/cluster/init', async (req) => {
    const b = initBody.parse(req.body ?? {});
    await d.hosts.initCluster({ advertiseAddr: b.advertiseAddr });
    return { mode: await d.hosts.clusterMode(), hosts: await d.hosts.hosts() };
  });

  api.get('/v1/cluster/join', async (req) => {
    const q = joinQuery.parse(req.query ?? {});
    const { token, managers } = await d.hosts.joinInfo();
    let engine: { address: string; setup: string } | undefined;
    if (q.address) {
      if (!d.engineTls) throw new Conflict('this server cannot issue engine certificates (no cluster CA): add the host without --address');
      engine = { address: q.address, setup: engineSetupCommand(q.address, await d.engineTls.issueEngine({ host: q.address, addresses: [q.address] })) };
    }
    return { token, managers, ...joinSteps(token, managers, q.pool, engine, d.registryTrust?.()) };
  });
}
