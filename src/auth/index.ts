/**
 * auth: who is calling. The bootstrap admin token, users with scrypt password hashes, sessions
 * (bearer for the CLI, HttpOnly cookie + double-submit CSRF token for the portal) and scoped API
 * tokens; every credential is stored as a hash. What each role may do is pure (core/auth.ts); which
 * route needs what is api/permissions.ts.
 */
export { ensureAdminToken, hashToken } from './tokens.ts';
export { checkPassword, hashPassword, verifyPassword } from './passwords.ts';
export {
  Authenticator, ADMIN_SESSION, basicPassword, cookieValue, sameDigest, CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE,
  type AuthenticatorOptions, type Credentials, type LoginResult,
} from './authenticator.ts';
export { PortalLogins, LOGIN_CODE_TTL_MS, type LoginSubject } from './portal-logins.ts';
export { SingleSignOn, sha256base64url, SSO_CLI_CODE_TTL_MS, SSO_PENDING_TTL_MS, type SingleSignOnOptions, type SsoLogin, type SsoPending, type SsoReturn } from './sso.ts';
export { OidcProvider } from './oidc.ts';
export { LdapDirectory } from './ldap.ts';
