import { createHmac, timingSafeEqual } from 'node:crypto';

import type { PushEvent, WebhookProvider } from '../core/builds.ts';

export type { PushEvent, WebhookProvider };

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Verifies a webhook on its raw body, in constant time: GitHub `X-Hub-Signature-256: sha256=HEX`,
 * Gitea/Forgejo `X-Gitea-Signature: HEX` (HMAC-SHA256), GitLab `X-Gitlab-Token: SECRET`.
 */
export function verifyWebhook(provider: WebhookProvider, headers: Record<string, string | string[] | undefined>, raw: Uint8Array, secret: string): boolean {
  const h = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] ?? '' : v ?? '';
  };
  const hmac = () => createHmac('sha256', secret).update(raw).digest('hex');
  switch (provider) {
    case 'github':
      return safeEqual(h('x-hub-signature-256'), `sha256=${hmac()}`);
    case 'gitea':
      return safeEqual(h('x-gitea-signature') || h('x-forgejo-signature'), hmac());
    case 'gitlab':
      return safeEqual(h('x-gitlab-token'), secret);
  }
}

/** The pushed ref and commit from a push event's JSON (the three providers agree on `ref` and `after`). */
export function parsePushEvent(provider: WebhookProvider, body: unknown): PushEvent | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  const ref = typeof b.ref === 'string' ? b.ref : undefined;
  const commit = provider === 'gitlab' && typeof b.checkout_sha === 'string' ? b.checkout_sha : typeof b.after === 'string' ? b.after : undefined;
  if (!ref || !commit || !/^[0-9a-f]{40}$/.test(commit)) return undefined;
  return { ref, commit };
}

/**
 * The delivery id the git host gives each delivery (kept when it re-sends one): GitHub
 * `X-GitHub-Delivery`, Gitea/Forgejo `X-Gitea-Delivery`/`X-Forgejo-Delivery`, GitLab
 * `X-Gitlab-Event-UUID` (or `Idempotency-Key`). Undefined when absent or not a plausible id.
 */
export function deliveryId(provider: WebhookProvider, headers: Record<string, string | string[] | undefined>): string | undefined {
  const names = provider === 'github' ? ['x-github-delivery'] : provider === 'gitea' ? ['x-gitea-delivery', 'x-forgejo-delivery'] : ['idempotency-key', 'x-gitlab-event-uuid'];
  for (const n of names) {
    const v = headers[n];
    const s = (Array.isArray(v) ? v[0] : v)?.trim();
    if (s && /^[A-Za-z0-9._:-]{1,200}$/.test(s)) return s;
  }
  return undefined;
}
