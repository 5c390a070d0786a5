/**
 * auth: API tokens. Every API route needs a bearer token; tokens are stored hashed.
 */
export { ensureAdminToken, hashToken } from './tokens.ts';
