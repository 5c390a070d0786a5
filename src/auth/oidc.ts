import * as oidc from 'openid-client';
import { isLoopbackHost, type OidcSettings } from '../core/sso.ts';
import { EngineUnavailable, Unauthorized } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';

/** What a login started with, kept by Berth until the provider sends the person back (never in the browser). */
export interface OidcPending {
  state: string;
  nonce: string;
  verifier: string;
}

/** How long discovery (endpoints, keys' URL) is trusted before it is read again. */
const DISCOVERY_TTL_MS = 10 * 60_000;

/**
 * One OpenID Connect provider, through openid-client (a certified relying party): discovery, the
 * authorization code flow with PKCE (S256), `state` and `nonce` checked, and the ID token's signature
 * checked against the provider's JWKS (`enableNonRepudiationChecks`: a token from the token endpoint is
 * verified too, not only trusted for coming over TLS), with its `iss`, `aud`, `exp`, `iat`, `nonce`.
 * Plain http is allowed only to an issuer on this machine (tests, a provider behind a local proxy).
 */
export class OidcProvider {
  private config: { at: number; value: Promise<oidc.Configuration> } | undefined;

  constructor(private readonly o: { settings: OidcSettings; clientSecret: string; redirectUri: string; clock: Clock; timeoutMs?: number }) {}

  private configuration(): Promise<oidc.Configuration> {
    const now = this.o.clock.now();
    if (this.config && now - this.config.at < DISCOVERY_TTL_MS) return this.config.value;
    const issuer = new URL(this.o.settings.issuer);
    const insecure = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname);
    const value = oidc.discovery(issuer, this.o.settings.clientId, { client_secret: this.o.clientSecret },
      oidc.ClientSecretBasic(this.o.clientSecret), {
        timeout: Math.ceil((this.o.timeoutMs ?? 10_000) / 1000),
        execute: [oidc.enableNonRepudiationChecks, ...(insecure ? [oidc.allowInsecureRequests] : [])],
      }).catch((err: unknown) => {
      this.config = undefined;
      throw new EngineUnavailable(`the identity provider ${this.o.settings.issuer} cannot be reached or its discovery document is not valid: ${(err as Error).message}`);
    });
    this.config = { at: now, value };
    return value;
  }

  /** The provider's authorization URL for a new login, and what to keep to finish it. */
  async start(): Promise<{ url: string; pending: OidcPending }> {
    const config = await this.configuration();
    const pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier() };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.o.redirectUri,
      scope: ['openid', ...this.o.settings.scopes.filter((s) => s !== 'openid')].join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    return { url: url.href, pending };
  }

  /**
   * The callback: checks the state, spends the code (with the PKCE verifier) at the token endpoint and
   * verifies the ID token. Returns its claims. Any failure is Unauthorized with what went wrong (never a token).
   */
  async finish(callbackUrl: URL, pending: OidcPending): Promise<Record<string, unknown>> {
    const config = await this.configuration();
    try {
      const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: pending.verifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true,
      });
      const claims = tokens.claims();
      if (!claims) throw new Error('no ID token in the token response');
      return claims as Record<string, unknown>;
    } catch (err) {
      const e = err as Error & { code?: string; error?: string; error_description?: string };
      // openid-client wraps what oauth4webapi found (`cause`): its message names the check (signature, "exp", "aud", "nonce", "state").
      const inner = (e.cause as { message?: unknown } | undefined)?.message;
      const why = e.error ? `${e.error}${e.error_description ? `: ${e.error_description}` : ''}` : typeof inner === 'string' ? inner : e.message;
      throw new Unauthorized(`single sign-on failed: the identity provider's answer was refused (${why.slice(0, 300)})`);
    }
  }
}
