import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { checkAppName, type SeenDelivery, type WebhooksPort } from '../core/builds.ts';
import { deliveryId, parsePushEvent, verifyWebhook } from './webhooks.ts';

interface Delivery {
  /** The git host's delivery id, when it sent one. */
  id?: string;
  /** SHA-256 of the signed body. */
  body: string;
  at: number;
}

export type { SeenDelivery };

/**
 * The webhook deliveries each app has acted on (DATA/git/APP.deliveries.json, the newest `keep`),
 * so that a delivery is acted on once: a second one with the same delivery id, or with the same
 * signed body under any id (the signature covers the body, not the id header), is refused. Claims of
 * one app are serialized in this process (the only writer).
 */
export class WebhookDeliveries {
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(private readonly root: string, private readonly keep = 1000) {}

  /** Records the delivery and returns undefined, or says how it was seen before (and records nothing). */
  async claim(app: string, d: { id?: string; raw: Uint8Array; at: number }): Promise<SeenDelivery | undefined> {
    checkAppName(app);
    const body = createHash('sha256').update(d.raw).digest('hex');
    const run = async (): Promise<SeenDelivery | undefined> => {
      const file = join(this.root, `${app}.deliveries.json`);
      const list = await readFile(file, 'utf8').then((t) => (JSON.parse(t) as { deliveries: Delivery[] }).deliveries, () => [] as Delivery[]);
      const same = list.find((x) => (d.id !== undefined && x.id === d.id) || x.body === body);
      if (same) return { by: d.id !== undefined && same.id === d.id ? 'id' : 'body', at: same.at };
      list.push({ ...(d.id !== undefined ? { id: d.id } : {}), body, at: d.at });
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      await writeFileAtomic(file, JSON.stringify({ deliveries: list.slice(-this.keep) }), { mode: 0o600 });
      return undefined;
    };
    const prev = this.chains.get(app) ?? Promise.resolve();
    const mine = prev.then(run, run);
    this.chains.set(app, mine);
    void mine.finally(() => {
      if (this.chains.get(app) === mine) this.chains.delete(app);
    }).catch(() => undefined);
    return await mine;
  }
}

/** Webhooks as the API uses them: verification and parsing (webhooks.ts), deliveries acted on once (kept under `root`). */
export function webhooksPort(root: string): WebhooksPort {
  const deliveries = new WebhookDeliveries(root);
  return { verify: verifyWebhook, deliveryId, parsePushEvent, claim: (app, d) => deliveries.claim(app, d) };
}
