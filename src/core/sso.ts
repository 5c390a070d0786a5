/**
 * Single sign-on as records and pure rules: identity providers (OpenID Connect, LDAP) configured by
 * owners, the mapping of a provider's groups to team roles, the allowed e-mail domains, the escaping
 * that keeps a user name from changing an LDAP filter or DN, and the check that a return address
 * stays on this site. The I/O (discovery, token exchange, binds and searches) lives in auth/; the
 * records in store/auth-store.ts.
 */
import { z } from 'zod';
import { NAME_PATTERN, ROLES, type Grant, type Role } from './auth.ts';
import { InvalidInput } from './errors.ts';

/** One group of the provider → one role on a team (optionally narrowed to an app and an environment). */
export interface GroupMapping {
  group: string;
  team: string;
  role: Exclude<Role, 'owner'> | 'owner';
  app: string;
  env: string;
}

export interface OidcSettings {
  /** The issuer URL: `${issuer}/.well-known/openid-configuration` is read for endpoints and keys. */
  issuer: string;
  clientId: string;
  /** Scopes asked for besides `openid` (default: profile email). */
  scopes: string[];
  /** The ID token claim that carries the user's groups (default `groups`). */
  groupsClaim: string;
  /** The claim that becomes the Berth user name (default `preferred_username`; `email`: the part before @). */
  usernameClaim: string;
}

export interface LdapSettings {
  /** `ldap://host:389` or `ldaps://host:636`. */
  url: string;
  /** Upgrade an ldap:// connection with StartTLS before any bind. */
  startTls: boolean;
  /** PEM of the CA that signed the server's certificate (default: the system's). */
  caPem: string;
  /** DN template: `uid={user},ou=people,dc=example,dc=com` (the user name escaped for a DN). Or, instead, a search: */
  userDn: string;
  /** With the service account below: the base and filter that find the user (`(uid={user})`, escaped for a filter). */
  userSearchBase: string;
  userSearchFilter: string;
  /** The service account that searches (its password is sealed like secrets). */
  bindDn: string;
  /** Groups by search: the base and a filter naming the user's DN (`(member={dn})`); empty base: the user's `memberOf`. */
  groupSearchBase: string;
  groupSearchFilter: string;
  /** The attribute that names a group found by search (default `cn`). */
  groupNameAttribute: string;
  /** Attribute with the user's e-mail (for allowed domains; default `mail`). */
  mailAttribute: string;
}

/** An identity provider as owners configure it (secrets apart: sealed in the store, never listed). */
export interface SsoProvider {
  name: string;
  kind: 'oidc' | 'ldap';
  /** What the login page's button says: "Sign in with <displayName>". */
  displayName: string;
  enabled: boolean;
  oidc?: OidcSettings;
  ldap?: LdapSettings;
  mappings: GroupMapping[];
  /** E-mail domains whose users may log in (empty: any). */
  allowedDomains: string[];
  createdAt: number;
  updatedAt: number;
  updatedBy: string;
}

/** Seals a provider's secret (its OIDC client secret, its LDAP service account's password) at rest. */
export interface SecretSealer {
  seal(plaintext: string, aad: string): string;
  open(sealed: string, aad: string): string;
}

/** Store role of identity providers (store/auth-store.ts). */
export interface SsoStore {
  putProvider(p: SsoProvider, sealedSecret: string | undefined): void;
  getProvider(name: string): { provider: SsoProvider; sealedSecret: string } | undefined;
  listProviders(): SsoProvider[];
  deleteProvider(name: string): boolean;
}

/** What a provider says about a person who logged in. */
export interface ExternalIdentity {
  /** Stable id at the provider (`sub`, the LDAP DN). */
  subject: string;
  /** The Berth user name it maps to. */
  username: string;
  email: string;
  groups: string[];
}

/** `sso:NAME` marks grants a provider's group mapping made: only those are re-evaluated at login. */
export const ssoGrantCreator = (provider: string) => `sso:${provider}`;
/** `NAME:SUBJECT` on a user: made by a provider's login, no password. */
export const externalId = (provider: string, subject: string) => `${provider}:${subject}`;

const scopeName = z.string().min(1).max(63).regex(/^(\*|[a-z0-9][a-z0-9._-]{0,62})$/, 'a name (lower-case letters, digits, ".", "_", "-") or *');

export const groupMappingSchema = z.object({
  group: z.string().min(1).max(1024),
  team: scopeName,
  role: z.enum(ROLES),
  app: scopeName.default('*'),
  env: scopeName.default('*'),
}).strict();

const httpUrl = z.string().max(2048).refine((s) => URL.canParse(s), 'a URL like https://idp.example.com/realms/main');

const oidcSchema = z.object({
  issuer: httpUrl,
  clientId: z.string().min(1).max(512),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/, 'a scope name')).max(20).default(['profile', 'email']),
  groupsClaim: z.string().min(1).max(200).default('groups'),
  usernameClaim: z.string().min(1).max(200).default('preferred_username'),
}).strict();

const ldapSchema = z.object({
  url: z.string().max(2048).regex(/^ldaps?:\/\/[^\s/]+\/?$/, 'ldap://HOST[:PORT] or ldaps://HOST[:PORT]'),
  startTls: z.boolean().default(false),
  caPem: z.string().max(64 * 1024).default(''),
  userDn: z.string().max(1024).default(''),
  userSearchBase: z.string().max(1024).default(''),
  userSearchFilter: z.string().max(1024).default('(uid={user})'),
  bindDn: z.string().max(1024).default(''),
  groupSearchBase: z.string().max(1024).default(''),
  groupSearchFilter: z.string().max(1024).default('(member={dn})'),
  groupNameAttribute: z.string().min(1).max(100).default('cn'),
  mailAttribute: z.string().min(1).max(100).default('mail'),
}).strict();

/** The body of `PUT /v1/sso/providers/:name`: a whole provider (a secret left out keeps the stored one). */
export const providerBodySchema = z.object({
  kind: z.enum(['oidc', 'ldap']),
  displayName: z.string().min(1).max(100).optional(),
  enabled: z.boolean().default(true),
  oidc: oidcSchema.optional(),
  ldap: ldapSchema.optional(),
  /** The OIDC client secret or the LDAP service account's password. */
  secret: z.string().max(4096).optional(),
  mappings: z.array(groupMappingSchema).max(500).default([]),
  allowedDomains: z.array(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'a domain like example.com').transform((s) => s.toLowerCase())).max(100).default([]),
}).strict();
export type ProviderBody = z.infer<typeof providerBodySchema>;

/** Checks a provider's body beyond its shape: the settings of its kind, present and coherent. Throws InvalidInput naming the field. */
export function checkProviderBody(b: ProviderBody, o: { hasStoredSecret: boolean }): void {
  if (b.kind === 'oidc') {
    if (!b.oidc) throw new InvalidInput('oidc: give the issuer and clientId of an OpenID Connect provider (kind "oidc")');
    if (b.ldap) throw new InvalidInput('ldap: not for a provider of kind "oidc"');
    const u = new URL(b.oidc.issuer);
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname))) {
      throw new InvalidInput(`oidc.issuer: must be https:// (plain http only on this machine: 127.0.0.1, ::1, localhost), got "${b.oidc.issuer}"`);
    }
    if (!b.secret && !o.hasStoredSecret) throw new InvalidInput('secret: give the client secret the provider issued for this client');
  } else {
    if (!b.ldap) throw new InvalidInput('ldap: give the url and either userDn or userSearchBase of an LDAP directory (kind "ldap")');
    if (b.oidc) throw new InvalidInput('oidc: not for a provider of kind "ldap"');
    const l = b.ldap;
    if (!l.userDn && !l.userSearchBase) throw new InvalidInput('ldap.userDn: give a DN template like "uid={user},ou=people,dc=example,dc=com", or ldap.userSearchBase with a service account (ldap.bindDn)');
    if (l.userDn && !l.userDn.includes('{user}')) throw new InvalidInput('ldap.userDn: must contain {user}, e.g. "uid={user},ou=people,dc=example,dc=com"');
    if (!l.userDn && !l.userSearchFilter.includes('{user}')) throw new InvalidInput('ldap.userSearchFilter: must contain {user}, e.g. "(uid={user})"');
    if (!l.userDn && !l.bindDn) throw new InvalidInput('ldap.bindDn: a user search needs a service account to search with (and its password in secret)');
    if (l.bindDn && !b.secret && !o.hasStoredSecret) throw new InvalidInput("secret: give the service account's password (ldap.bindDn)");
    if (l.groupSearchBase && !l.groupSearchFilter.includes('{dn}') && !l.groupSearchFilter.includes('{user}')) {
      throw new InvalidInput('ldap.groupSearchFilter: must name the user as {dn} (groupOfNames: "(member={dn})") or {user} (posixGroup: "(memberUid={user})")');
    }
    if (l.startTls && l.url.startsWith('ldaps:')) throw new InvalidInput('ldap.startTls: an ldaps:// URL is TLS already; StartTLS is for ldap://');
  }
  for (const [i, m] of b.mappings.entries()) {
    if (m.role === 'owner' && m.team !== '*') throw new InvalidInput(`mappings.${i}.team: an owner mapping is for the whole installation: team "*"`);
    if (m.role !== 'owner' && m.team === '*') throw new InvalidInput(`mappings.${i}.team: name a team (only role "owner" takes team "*")`);
  }
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The grants a person's groups give (deduplicated); a group matches a mapping by its full name or, for a DN, its first RDN's value. */
export function grantsForGroups(mappings: readonly GroupMapping[], groups: readonly string[]): Pick<Grant, 'role' | 'team' | 'app' | 'env'>[] {
  const names = new Set<string>();
  for (const g of groups) {
    names.add(g.toLowerCase());
    const rdn = /^[^=,]+=((?:\\.|[^,\\])+)/.exec(g);
    if (rdn && g.includes(',')) names.add(rdn[1]!.replace(/\\(.)/g, '$1').toLowerCase());
  }
  const out = new Map<string, Pick<Grant, 'role' | 'team' | 'app' | 'env'>>();
  for (const m of mappings) {
    if (!names.has(m.group.toLowerCase())) continue;
    const g = { role: m.role, team: m.team, app: m.app, env: m.env };
    out.set(`${g.role}|${g.team}|${g.app}|${g.env}`, g);
  }
  return [...out.values()];
}

/** True if the e-mail is in one of the allowed domains (none: everyone). */
export function domainAllowed(email: string, domains: readonly string[]): boolean {
  if (domains.length === 0) return true;
  const at = email.lastIndexOf('@');
  if (at < 1) return false;
  const d = email.slice(at + 1).toLowerCase();
  return domains.some((x) => d === x.toLowerCase());
}

/**
 * A value inside an LDAP search filter (RFC 4515): `*`, `(`, `)`, `\` and NUL escaped as `\XX`,
 * so `*)(uid=*` stays one literal value and cannot widen or end the filter.
 */
export function ldapFilterValue(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out += ch === '*' || ch === '(' || ch === ')' || ch === '\\' || c === 0 ? `\\${c.toString(16).padStart(2, '0')}` : ch;
  }
  return out;
}

/** A value of one RDN of a DN (RFC 4514): the specials escaped, leading `#`/space and a trailing space too. */
export function ldapDnValue(s: string): string {
  let out = s.replace(/[\\,+"<>;=\0]/g, (c) => (c === '\0' ? '\\00' : `\\${c}`));
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ') && out.length > 1) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** The Berth user name of an external identity: lower-cased; `email` claims give the part before @. Throws if it is not a valid name. */
export function externalUserName(raw: unknown, claim: string): string {
  if (typeof raw !== 'string' || raw === '') throw new InvalidInput(`the provider's token has no "${claim}" claim to name the user: set oidc.usernameClaim (e.g. "preferred_username" or "email")`);
  const name = (claim === 'email' ? raw.split('@')[0]! : raw).toLowerCase();
  if (!NAME_PATTERN.test(name)) {
    throw new InvalidInput(`the provider names this user "${name.slice(0, 80)}" (claim ${claim}), which is not a Berth user name (lower-case letters, digits, ".", "_", "-"): choose another oidc.usernameClaim`);
  }
  return name;
}

/** The groups a claim holds: an array of strings, or one string (some providers send one group as a string). */
export function groupsOf(raw: unknown): string[] {
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw)) return raw.filter((x): x is string => typeof x === 'string').slice(0, 1000);
  return [];
}

/**
 * Where the portal goes after a login: only a path on this site (`/apps/x?y`). Anything else — an
 * absolute URL, `//host`, `/\host`, a scheme, control characters — becomes `/`, so a crafted login
 * link cannot send a person, freshly logged in, to another site (open redirect).
 */
export function safeReturnPath(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 2000) return '/';
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return '/';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f\\]/.test(raw)) return '/';
  return raw;
}

/** What an owner sees of a provider (the secret only as whether one is set). */
export interface SsoProviderView extends SsoProvider {
  secretSet: boolean;
}
