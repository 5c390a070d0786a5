import type { Engine, LogLine } from '../core/ports.ts';
import type { ServiceKey, Store } from '../core/store.ts';

export interface TaggedLine extends LogLine {
  service: string;
  instance: string;
}

/**
 * Logs of a service's (or an app's) current instances, read from the engine and merged. Without
 * follow, lines are sorted by time; with follow they arrive as written, each tagged with its instance.
 * (A persistent, searchable log store comes with the logs issue.)
 */
export async function readAppLogs(engine: Engine, store: Store, k: Omit<ServiceKey, 'service'> & { service?: string },
  opts: { follow: boolean; tail: number; signal: AbortSignal }, onLine: (l: TaggedLine) => void): Promise<void> {
  const insts = store.listInstances(k).filter((i) => i.containerId);
  if (!opts.follow) {
    const all: TaggedLine[] = [];
    await Promise.all(insts.map((i) => engine.logs(i.containerId!, { follow: false, tail: opts.tail, signal: opts.signal },
      (l) => all.push({ ...l, service: i.service, instance: i.id })).catch(() => undefined)));
    all.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    for (const l of all) onLine(l);
    return;
  }
  await Promise.all(insts.map((i) => engine.logs(i.containerId!, { follow: true, tail: opts.tail, signal: opts.signal },
    (l) => onLine({ ...l, service: i.service, instance: i.id })).catch(() => undefined)));
}
