import { createHash, randomBytes } from 'node:crypto';
import { NAME_PATTERN, type AuthStore, type UserRecord } from '../core/auth.ts';
import {
  checkProviderBody, domainAllowed, externalId, externalUserName, grantsForGroups, groupsOf, ssoGrantCreator,
  type ExternalIdentity, type ProviderBody, type SecretSealer, type SsoProvider, type SsoProviderView, type SsoStore,
} from '../core/sso.ts';
import { Conflict, Forbidden, InvalidInput, NotFound, Unauthorized } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import { sameDigest, type Authenticator, type LoginResult } from './authenticator.ts';
import { LdapDirectory } from './ldap.ts';
import { OidcProvider, type OidcPending } from './oidc.ts';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** How long a started OIDC login waits for the person to come back, and a CLI's code to be exchanged. */
export const SSO_PENDING_TTL_MS = 10 * 60_000;
export const SSO_CLI_CODE_TTL_MS = 2 * 60_000;

/** Where a login goes once the provider sent the person back: the portal (a path of this site) or a waiting `berth login --sso`. */
export type SsoReturn = { kind: 'portal'; path: string } | { kind: 'cli'; port: number; challenge: string };

/** A started OIDC login, taken (once) when the provider sends the person back. */
export interface SsoPending extends OidcPending {
  provider: string;
  redirectUri: string;
  /** SHA-256 of the value of the browser-binding cookie: the callback must come from the browser that started. */
  bindingHash: string;
  back: SsoReturn;
  expiresAt: number;
}

export interface SingleSignOnOptions {
  store: AuthStore & SsoStore;
  sealer: SecretSealer;
  auth: Authenticator;
  clock: Clock;
  newId: () => string;
  /** Discovery, token and LDAP timeouts (default 10 s). */
  timeoutMs?: number;
}

/** The outcome of an SSO login: the user (made or updated) and what their groups gave. */
export interface SsoLogin {
  user: Pick<UserRecord, 'id' | 'name'>;
  provider: string;
  created: boolean;
  granted: number;
  revoked: number;
}

/**
 * Single sign-on: owners configure providers (OpenID Connect, LDAP); a login through one makes the
 * user on first sight (external: no password), and every login re-evaluates their grants from their
 * groups — grants a provider made (`createdBy sso:NAME`) that the groups no longer give are taken away,
 * grants an owner gave by hand are left alone. A person whose groups give nothing is refused and their
 * sessions end. Started OIDC logins and CLI codes are in memory, kept by hash, single use.
 */
export class SingleSignOn {
  private readonly pending = new Map<string, SsoPending>();
  private readonly cliCodes = new Map<string, { challenge: string; user: Pick<UserRecord, 'id' | 'name'>; expiresAt: number }>();
  private readonly oidcClients = new Map<string, { key: string; client: OidcProvider }>();

  constructor(private readonly o: SingleSignOnOptions) {}

  list(): SsoProviderView[] {
    return this.o.store.listProviders().map((p) => ({ ...p, secretSet: (this.o.store.getProvider(p.name)?.sealedSecret ?? '') !== '' }));
  }

  /** The enabled providers, as the login page shows them. */
  options(): { name: string; kind: 'oidc' | 'ldap'; displayName: string }[] {
    return this.o.store.listProviders().filter((p) => p.enabled).map((p) => ({ name: p.name, kind: p.kind, displayName: p.displayName }));
  }

  /** Creates or replaces a provider; a secret left out keeps the stored one. */
  put(name: string, b: ProviderBody, by: string): { provider: SsoProviderView; created: boolean } {
    const old = this.o.store.getProvider(name);
    if (old && old.provider.kind !== b.kind) {
      throw new Conflict(`provider "${name}" is of kind "${old.provider.kind}": remove it first (\`berth sso rm ${name}\`) to make a "${b.kind}" provider of that name`);
    }
    checkProviderBody(b, { hasStoredSecret: (old?.sealedSecret ?? '') !== '' });
    const now = this.o.clock.now();
    const p: SsoProvider = {
      name, kind: b.kind, displayName: b.displayName ?? name, enabled: b.enabled,
      ...(b.oidc ? { oidc: b.oidc } : {}), ...(b.ldap ? { ldap: b.ldap } : {}),
      mappings: b.mappings, allowedDomains: b.allowedDomains, createdAt: old?.provider.createdAt ?? now, updatedAt: now, updatedBy: by,
    };
    this.o.store.putProvider(p, b.secret !== undefined ? (b.secret === '' ? '' : this.o.sealer.seal(b.secret, aad(name))) : undefined);
    this.oidcClients.delete(name);
    return { provider: { ...p, secretSet: (this.o.store.getProvider(name)?.sealedSecret ?? '') !== '' }, created: !old };
  }

  /** Removes a provider: the grants it made go, and the sessions of the users it made end (they cannot log in any more). */
  remove(name: string): { grantsRevoked: number; sessionsEnded: number } {
    if (!this.o.store.getProvider(name)) throw new NotFound(`no single sign-on provider "${name}"`);
    let grantsRevoked = 0;
    let sessionsEnded = 0;
    for (const g of this.o.store.listGrants()) {
      if (g.createdBy === ssoGrantCreator(name) && this.o.store.deleteGrant(g.id)) grantsRevoked++;
    }
    for (const u of this.o.store.listUsers()) if (u.external?.startsWith(`${name}:`)) sessionsEnded += this.o.store.deleteUserSessions(u.id);
    this.o.store.deleteProvider(name);
    this.oidcClients.delete(name);
    return { grantsRevoked, sessionsEnded };
  }

  private provider(name: string, kind: 'oidc' | 'ldap'): { provider: SsoProvider; secret: string } {
    const r = this.o.store.getProvider(name);
    if (!r || r.provider.kind !== kind || !r.provider.enabled) throw new NotFound(`no enabled ${kind === 'oidc' ? 'OpenID Connect' : 'LDAP'} provider "${name}": see \`berth sso list\``);
    return { provider: r.provider, secret: r.sealedSecret ? this.o.sealer.open(r.sealedSecret, aad(name)) : '' };
  }

  private oidcClient(p: SsoProvider, secret: string, redirectUri: string): OidcProvider {
    const key = `${p.updatedAt}|${redirectUri}`;
    const c = this.oidcClients.get(p.name);
    if (c && c.key === key) return c.client;
    const client = new OidcProvider({ settings: p.oidc!, clientSecret: secret, redirectUri, clock: this.o.clock, ...(this.o.timeoutMs ? { timeoutMs: this.o.timeoutMs } : {}) });
    this.oidcClients.set(p.name, { key, client });
    return client;
  }

  /**
   * Starts an OIDC login: the provider's URL to send the browser to, and a binding value for a cookie
   * of that browser (the callback is refused without it, so a login started elsewhere cannot be
   * completed in someone else's browser).
   */
  async startOidc(name: string, redirectUri: string, back: SsoReturn): Promise<{ url: string; binding: string }> {
    const { provider, secret } = this.provider(name, 'oidc');
    this.sweep();
    if (this.pending.size > 10_000) throw new Forbidden('too many single sign-on logins in progress: try again in a few minutes');
    const { url, pending } = await this.oidcClient(provider, secret, redirectUri).start();
    const binding = randomBytes(24).toString('base64url');
    this.pending.set(sha256(pending.state), { ...pending, provider: name, redirectUri, bindingHash: sha256(binding), back, expiresAt: this.o.clock.now() + SSO_PENDING_TTL_MS });
    return { url, binding };
  }

  /**
   * The provider sent the person back: the state names a login this server started (once: a replayed
   * callback finds nothing), from this browser. Returns the login (and where it goes back to).
   */
  takePending(name: string, callbackUrl: URL, binding: string | undefined): SsoPending {
    this.sweep();
    const state = callbackUrl.searchParams.get('state') ?? '';
    const key = sha256(state);
    const p = this.pending.get(key);
    this.pending.delete(key);
    if (!state || !p || p.provider !== name || p.expiresAt <= this.o.clock.now()) {
      throw new Unauthorized('single sign-on failed: this login is unknown, already finished or older than 10 minutes: start again from the login page');
    }
    if (!binding || !sameDigest(sha256(binding), p.bindingHash)) {
      throw new Unauthorized('single sign-on failed: the login was started in another browser (or its cookie was blocked): start again from the login page');
    }
    return p;
  }

  /** Exchanges the code of a taken login (takePending) and admits the user its verified ID token names. */
  async finishOidc(p: SsoPending, callbackUrl: URL): Promise<SsoLogin> {
    const name = p.provider;
    const err = callbackUrl.searchParams.get('error');
    if (err) throw new Unauthorized(`single sign-on failed: the identity provider said ${err.slice(0, 100)}${callbackUrl.searchParams.get('error_description') ? `: ${callbackUrl.searchParams.get('error_description')!.slice(0, 200)}` : ''}`);
    const { provider, secret } = this.provider(name, 'oidc');
    const claims = await this.oidcClient(provider, secret, p.redirectUri).finish(callbackUrl, p);
    const s = provider.oidc!;
    const email = typeof claims.email === 'string' ? claims.email : '';
    if (provider.allowedDomains.length && claims.email_verified === false) {
      throw new Forbidden(`single sign-on refused: the provider has not verified the e-mail address ${email}`);
    }
    const identity: ExternalIdentity = {
      subject: String(claims.sub), username: externalUserName(claims[s.usernameClaim], s.usernameClaim), email, groups: groupsOf(claims[s.groupsClaim]),
    };
    return this.admit(provider, identity);
  }

  /**
   * `POST /v1/session` for a name that is no local user: each enabled LDAP provider in turn; the first
   * that knows the name and password logs them in. Undefined: no LDAP provider is configured.
   */
  async ldapLogin(name: string, password: string): Promise<SsoLogin | undefined> {
    const providers = this.o.store.listProviders().filter((p) => p.enabled && p.kind === 'ldap');
    if (providers.length === 0) return undefined;
    // Only what could be a Berth user name goes to a directory (escaped there as well): `*`, `(`, `,` never do.
    const username = name.toLowerCase();
    if (!NAME_PATTERN.test(username) || password === '') throw new Unauthorized('wrong user name or password');
    let lastErr: unknown = new Unauthorized('wrong user name or password');
    for (const p of providers) {
      const { secret } = this.provider(p.name, 'ldap');
      try {
        const identity = await new LdapDirectory({ settings: p.ldap!, bindPassword: secret, ...(this.o.timeoutMs ? { timeoutMs: this.o.timeoutMs } : {}) }).login(username, password);
        return this.admit(p, identity);
      } catch (err) {
        lastErr = err;
        if (!(err instanceof Unauthorized)) continue;
      }
    }
    throw lastErr;
  }

  /** Makes or updates the user of an identity and sets the grants its groups give. */
  private admit(p: SsoProvider, id: ExternalIdentity): SsoLogin {
    const ext = externalId(p.name, id.subject);
    let user = this.o.store.userByName(id.username);
    if (user && user.external !== ext) {
      // A local user of that name, or one another provider (or another subject) made: never merged.
      throw new Conflict(`single sign-on refused: the user name "${id.username}" belongs to ${user.external ? 'another sign-on identity' : 'a local user'} of Berth; an owner can rename or remove it`);
    }
    const wanted = domainAllowed(id.email, p.allowedDomains) ? grantsForGroups(p.mappings, id.groups) : [];
    const creator = ssoGrantCreator(p.name);
    const subject = user ? `user:${user.id}` : '';
    const held = subject ? this.o.store.listGrants({ subject }).filter((g) => g.createdBy === creator) : [];
    const keyOf = (g: { role: string; team: string; app: string; env: string }) => `${g.role}|${g.team}|${g.app}|${g.env}`;
    const want = new Set(wanted.map(keyOf));
    let revoked = 0;
    for (const g of held) if (!want.has(keyOf(g)) && this.o.store.deleteGrant(g.id)) revoked++;
    if (!domainAllowed(id.email, p.allowedDomains)) {
      if (user) this.o.store.deleteUserSessions(user.id);
      throw new Forbidden(`single sign-on refused: ${id.email ? `the e-mail domain of ${id.email}` : 'an account without an e-mail address'} is not allowed by provider "${p.name}" (allowed: ${p.allowedDomains.join(', ')})`);
    }
    if (wanted.length === 0) {
      // Out of every mapped group: no access, and no session of theirs lives on.
      if (user) this.o.store.deleteUserSessions(user.id);
      throw new Forbidden(`single sign-on refused: "${id.username}" is in none of the groups provider "${p.name}" maps to a team (their groups: ${id.groups.slice(0, 10).join(', ') || 'none'})`);
    }
    const now = this.o.clock.now();
    let created = false;
    if (!user) {
      const teams = new Set(this.o.store.listTeams().map((t) => t.name));
      const missing = wanted.filter((g) => g.team !== '*' && !teams.has(g.team)).map((g) => g.team);
      if (missing.length === wanted.length) throw new InvalidInput(`single sign-on: provider "${p.name}" maps the user's groups to team(s) that do not exist (${[...new Set(missing)].join(', ')}): make them with \`berth team add\``);
      user = { id: this.o.newId(), name: id.username, passwordHash: '', createdAt: now, createdBy: creator, external: ext };
      this.o.store.addUser(user);
      created = true;
    }
    const teams = new Set(this.o.store.listTeams().map((t) => t.name));
    const heldKeys = new Set(this.o.store.listGrants({ subject: `user:${user.id}` }).map(keyOf));
    let granted = 0;
    for (const g of wanted) {
      if (heldKeys.has(keyOf(g)) || (g.team !== '*' && !teams.has(g.team))) continue;
      this.o.store.addGrant({ id: this.o.newId(), subject: `user:${user.id}`, ...g, createdAt: now, createdBy: creator });
      granted++;
    }
    return { user: { id: user.id, name: user.name }, provider: p.name, created, granted, revoked };
  }

  /** A session for the user an SSO login admitted (the same as a password login's). */
  openSession(login: SsoLogin, o: { kind: 'cookie' | 'cli'; ip: string }): LoginResult {
    return this.o.auth.openSession(login.user, o);
  }

  /** `berth login --sso`: a one-time code for the CLI waiting on 127.0.0.1, spendable only with the verifier whose SHA-256 it sent. */
  issueCliCode(user: Pick<UserRecord, 'id' | 'name'>, challenge: string): string {
    this.sweep();
    const code = randomBytes(24).toString('base64url');
    this.cliCodes.set(sha256(code), { challenge, user, expiresAt: this.o.clock.now() + SSO_CLI_CODE_TTL_MS });
    return code;
  }

  exchangeCliCode(code: string, verifier: string, ip: string): LoginResult {
    this.sweep();
    const key = sha256(code);
    const c = this.cliCodes.get(key);
    this.cliCodes.delete(key);
    if (!c || c.expiresAt <= this.o.clock.now() || !sameDigest(sha256base64url(verifier), c.challenge)) {
      throw new Unauthorized('this sign-on code is unknown, already used, expired or not yours: run `berth login --sso NAME` again');
    }
    return this.o.auth.openSession(c.user, { kind: 'cli', ip });
  }

  private sweep(): void {
    const now = this.o.clock.now();
    for (const [k, v] of this.pending) if (v.expiresAt <= now) this.pending.delete(k);
    for (const [k, v] of this.cliCodes) if (v.expiresAt <= now) this.cliCodes.delete(k);
  }
}

/** The CLI's challenge: base64url(SHA-256(verifier)), as PKCE's S256. */
export function sha256base64url(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

const aad = (provider: string) => `sso/${provider}/secret`;
