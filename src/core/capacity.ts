/**
 * Memory capacity of a host, as the sum of the memory limits of the instances placed on it. Pure:
 * the API gathers the services and asks whether a scale fits before it writes anything.
 */

/** One service as desired: how many instances, and the memory limit of each (undefined: no limit). */
export interface ServiceReservation {
  /** `app/env/service` */
  name: string;
  replicas: number;
  memoryBytes?: number;
}

export interface ScaleCheck {
  fits: boolean;
  /** Sum of the memory limits of every instance after the change. */
  totalBytes: number;
  /** …of which the services being scaled. */
  scaledBytes: number;
  hostBytes: number;
  /** Why it does not fit, with the numbers; empty when it fits. */
  message: string;
}

/**
 * Whether setting `changes` (name → replicas) keeps the sum of memory limits on the host within its
 * memory. Only a change that adds limited memory can be refused: scaling down, or a service without a
 * limit, always fits (a host already over its memory must still be able to shrink).
 */
export function checkScaleMemory(services: ServiceReservation[], changes: Map<string, number>, hostBytes: number): ScaleCheck {
  let before = 0;
  let total = 0;
  let scaled = 0;
  const grown: string[] = [];
  for (const s of services) {
    const limit = s.memoryBytes ?? 0;
    const next = changes.get(s.name) ?? s.replicas;
    before += s.replicas * limit;
    total += next * limit;
    if (changes.has(s.name)) {
      scaled += next * limit;
      if (next > s.replicas && limit > 0) grown.push(`${s.name} to ${next} × ${formatBytes(limit)}`);
    }
  }
  const fits = total <= hostBytes || total <= before;
  const message = fits ? '' :
    `scaling ${grown.join(', ')} would make the memory limits of all instances on this host add up to ${formatBytes(total)} ` +
    `(${formatBytes(scaled)} for the scaled service${changes.size > 1 ? 's' : ''}, ${formatBytes(total - scaled)} for everything else), ` +
    `more than the host's ${formatBytes(hostBytes)} of memory: scale to fewer replicas, lower the limit (deploy.resources.limits.memory), ` +
    'or add --force to scale anyway (instances may then be killed for lack of memory)';
  return { fits, totalBytes: total, scaledBytes: scaled, hostBytes, message };
}

/** 512 MiB, 1.5 GiB: binary units, like Compose's memory limits. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}
