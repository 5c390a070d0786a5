/**
 * Compose's `deploy.placement` (constraints, preferences: spread, max_replicas_per_node) and
 * `deploy.resources.reservations` of one service, checked for meaning: where its instances may run on
 * many hosts and what each reserves there.
 */
import { parseConstraint } from '../placement.ts';
import { isRecord, take, type Json, type SpecContext } from './context.ts';
import { unknownKey } from './suggest.ts';
import type { ServiceSpec } from './types.ts';
import { parseCount, parseCpus, parseSize } from './units.ts';
import type { SpecPath } from './yaml-source.ts';

const PLACEMENT_KEYS = ['constraints', 'preferences', 'max_replicas_per_node'];
/** Swarm spreads over node labels only. */
const SPREAD = /^node\.labels\.[A-Za-z0-9_.-]+$/;

export function placementOf(ctx: SpecContext, path: SpecPath, raw: unknown): ServiceSpec['placement'] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isRecord(raw)) {
    ctx.diag.error(path, 'expected a mapping with `constraints`, `preferences` and/or `max_replicas_per_node`');
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (!PLACEMENT_KEYS.includes(key) && !key.startsWith('x-')) ctx.diag.error([...path, key], unknownKey(key, PLACEMENT_KEYS, 'deploy.placement'), 'key');
  }
  const out: NonNullable<ServiceSpec['placement']> = { constraints: [], spread: [] };
  const constraints = raw.constraints;
  if (constraints !== undefined) {
    if (!Array.isArray(constraints)) {
      ctx.diag.error([...path, 'constraints'], 'expected a list, e.g. [node.labels.zone==a, node.role!=manager]');
    } else {
      constraints.forEach((c, i) => {
        try {
          if (typeof c !== 'string') throw new Error(`${JSON.stringify(c)} is not a constraint: write node.labels.NAME==VALUE (or !=)`);
          const parsed = parseConstraint(c);
          out.constraints.push(`${parsed.key}${parsed.op}${parsed.value}`);
        } catch (e) {
          ctx.diag.error([...path, 'constraints', i], (e as Error).message);
        }
      });
    }
  }
  const prefs = raw.preferences;
  if (prefs !== undefined) {
    const hint = 'write e.g. preferences: [{spread: node.labels.zone}]';
    if (!Array.isArray(prefs)) {
      ctx.diag.error([...path, 'preferences'], `expected a list: ${hint}`);
    } else {
      prefs.forEach((p, i) => {
        const at = [...path, 'preferences', i];
        if (!isRecord(p) || Object.keys(p).some((k) => k !== 'spread')) return ctx.diag.error(at, `only spread preferences exist: ${hint}`);
        const d = p.spread;
        if (typeof d !== 'string' || !SPREAD.test(d.trim())) return ctx.diag.error([...at, 'spread'], `${JSON.stringify(d)} cannot be spread over: Swarm spreads over node labels, ${hint}`);
        out.spread.push(d.trim());
      });
    }
  }
  if (raw.max_replicas_per_node !== undefined) {
    const n = take(ctx, [...path, 'max_replicas_per_node'], parseCount(raw.max_replicas_per_node));
    if (n !== undefined && n < 1) ctx.diag.error([...path, 'max_replicas_per_node'], 'must be at least 1 (0 would place nothing): leave it out for no limit');
    else if (n !== undefined) out.maxReplicasPerNode = n;
  }
  return out.constraints.length || out.spread.length || out.maxReplicasPerNode !== undefined ? out : undefined;
}

export function reservationsOf(ctx: SpecContext, path: SpecPath, deploy: Json): ServiceSpec['reservations'] | undefined {
  const resources = isRecord(deploy.resources) ? deploy.resources : {};
  const r = resources.reservations;
  if (r === undefined || r === null) return undefined;
  if (!isRecord(r)) {
    ctx.diag.error(path, 'expected a mapping such as {cpus: "0.5", memory: 256M}');
    return undefined;
  }
  const out: NonNullable<ServiceSpec['reservations']> = {};
  if (r.cpus !== undefined) {
    const n = take(ctx, [...path, 'cpus'], parseCpus(r.cpus));
    if (n !== undefined) out.nanoCpus = n;
  }
  if (r.memory !== undefined) {
    const m = take(ctx, [...path, 'memory'], parseSize(r.memory));
    if (m !== undefined) out.memoryBytes = m;
  }
  const limits = isRecord(resources.limits) ? resources.limits : {};
  const lim = { cpus: limits.cpus === undefined ? undefined : parseCpus(limits.cpus).value, memory: limits.memory === undefined ? undefined : parseSize(limits.memory).value };
  if (out.nanoCpus !== undefined && lim.cpus !== undefined && out.nanoCpus > lim.cpus) {
    ctx.diag.error([...path, 'cpus'], 'reserves more CPU than its limit (deploy.resources.limits.cpus): lower the reservation or raise the limit');
  }
  if (out.memoryBytes !== undefined && lim.memory !== undefined && out.memoryBytes > lim.memory) {
    ctx.diag.error([...path, 'memory'], 'reserves more memory than its limit (deploy.resources.limits.memory): lower the reservation or raise the limit');
  }
  return out.nanoCpus !== undefined || out.memoryBytes !== undefined ? out : undefined;
}
