/**
 * Single sign-on's wiring: the providers' secrets sealed with the secrets' key (SecretBox), the
 * SingleSignOn service (auth/sso.ts), LDAP as the password login's fallback for names that are no
 * local user, and the routes (api/sso-routes.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../auth/index.ts';
import { SingleSignOn } from '../auth/index.ts';
import { registerSsoRoutes } from '../api/sso-routes.ts';
import type { AuditStore } from '../core/audit.ts';
import type { AuthStore } from '../core/auth.ts';
import type { Clock, Logger } from '../core/ports.ts';
import type { SecretSealer, SsoStore } from '../core/sso.ts';
import type { SecretBox } from '../config/index.ts';

/** A SecretBox as a string sealer: `v1.IV.TAG.CIPHERTEXT` (base64url), bound to its `aad`. */
export function stringSealer(box: SecretBox): SecretSealer {
  return {
    seal(plaintext, aad) {
      const s = box.seal(plaintext, aad);
      return ['v1', s.iv.toString('base64url'), s.tag.toString('base64url'), s.ciphertext.toString('base64url')].join('.');
    },
    open(sealed, aad) {
      const [v, iv, tag, ct] = sealed.split('.');
      if (v !== 'v1' || iv === undefined || tag === undefined || ct === undefined) return box.open({ iv: Buffer.alloc(12), tag: Buffer.alloc(16), ciphertext: Buffer.alloc(0) }, aad);
      return box.open({ iv: Buffer.from(iv, 'base64url'), tag: Buffer.from(tag, 'base64url'), ciphertext: Buffer.from(ct, 'base64url') }, aad);
    },
  };
}

export function wireSso(api: FastifyInstance, d: {
  store: AuthStore & SsoStore; secretBox: SecretBox; auth: Authenticator; audit: AuditStore; clock: Clock; logger: Logger; newId: () => string;
  publicUrl?: string; timeoutMs?: number;
}): SingleSignOn {
  const sso = new SingleSignOn({ store: d.store, sealer: stringSealer(d.secretBox), auth: d.auth, clock: d.clock, newId: d.newId, ...(d.timeoutMs ? { timeoutMs: d.timeoutMs } : {}) });
  d.auth.externalLogin = async (name, password) => {
    const r = await sso.ldapLogin(name, password);
    return r && { user: r.user, provider: r.provider };
  };
  registerSsoRoutes(api, { sso, audit: d.audit, clock: d.clock, logger: d.logger, ...(d.publicUrl ? { publicUrl: d.publicUrl } : {}) });
  return sso;
}
