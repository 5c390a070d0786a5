import { isIP } from 'node:net';
import { runCommand } from '../lib/exec.ts';

/**
 * Cutting the ingress's connections to a backend that became unreachable (issue 13 item 3).
 *
 * A request nginx already sent to an instance on a host that died waits for an answer that never
 * comes: the link is gone, so no reset arrives, and nginx waits `proxy_read_timeout` (60 s) while the
 * client gives up. A short read timeout for every route would break slow endpoints. Instead, when
 * Berth's health check finds an instance *unreachable* from this host (no TCP connection at all: the
 * connect timed out or the host is unreachable — not a slow or failing answer), the sockets to its
 * address and port in this network namespace (the one nginx shares with Berth) are destroyed with
 * `ss -K` (SOCK_DESTROY, kernel CONFIG_INET_DIAG_DESTROY). nginx's read fails with ECONNABORTED,
 * an "error" for `proxy_next_upstream`: an idempotent request is retried on another backend, a POST
 * / PATCH / LOCK is not (nginx never retries non-idempotent requests that were sent) and gets 502.
 * Measured on this kernel: a GET held by a silent backend answered from the other one ~2 ms after the
 * cut; a POST got 502.
 */

export interface CutTarget {
  address: string;
  port: number;
}

/** `ss` filter tokens for the targets: `dst A:P or dst B:Q` (IPv6 in brackets). Throws on a bad target. */
export function cutFilter(targets: readonly CutTarget[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const t of targets) {
    const v = isIP(t.address);
    if (v === 0) throw new Error(`not an IP address: ${JSON.stringify(t.address)}`);
    if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw new Error(`not a port: ${t.port}`);
    const where = v === 6 ? `[${t.address}]:${t.port}` : `${t.address}:${t.port}`;
    if (seen.has(where)) continue;
    seen.add(where);
    if (out.length > 0) out.push('or');
    out.push('dst', where);
  }
  return out;
}

/**
 * Destroys this namespace's TCP sockets to the targets (`ss -K`); returns how many it listed as
 * destroyed. Needs CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY: without either `ss`
 * lists nothing (or fails) and the requests fall back to nginx's read timeout.
 */
export async function cutConnections(targets: readonly CutTarget[], ssBin = 'ss'): Promise<number> {
  const filter = cutFilter(targets);
  if (filter.length === 0) return 0;
  const { stdout } = await runCommand(ssBin, ['-K', '-t', '-n', '-H', ...filter], { timeoutMs: 5000 });
  return stdout.split('\n').filter((l) => l.trim() !== '').length;
}
