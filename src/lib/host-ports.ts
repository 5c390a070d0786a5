import { readFileSync } from 'node:fs';

/** TCP ports in LISTEN state on this host (IPv4 and IPv6), from /proc/net. Synchronous and cheap. */
export function listeningTcpPorts(procNet = '/proc/net'): Set<number> {
  const ports = new Set<number>();
  for (const f of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`${procNet}/${f}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue; // 0A = TCP_LISTEN
      const port = parseInt(cols[1]!.split(':')[1] ?? '', 16);
      if (Number.isFinite(port)) ports.add(port);
    }
  }
  return ports;
}

/** A port-free predicate that reads the LISTEN table once per allocation burst (at most every 50 ms). */
export function hostPortChecker(): (port: number) => boolean {
  let cached: Set<number> | undefined;
  let at = 0;
  return (port) => {
    if (!cached || Date.now() - at > 50) {
      cached = listeningTcpPorts();
      at = Date.now();
    }
    return !cached.has(port);
  };
}
