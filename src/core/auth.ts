/**
 * Who may do what: users, sessions, teams, roles, grants and scoped tokens as records, and the pure
 * decision `allows(grants, action, target)`. No I/O and no crypto here: hashing lives in auth/, the
 * records in store/auth-store.ts, the enforcement (one table of every route's permission) in api/.
 */

/** A person who logs in with a password (later also by SSO). */
export interface UserRecord {
  id: string;
  name: string;
  /** `scrypt$N$r$p$salt$hash` (auth/passwords.ts); empty for a user who cannot log in with a password. */
  passwordHash: string;
  createdAt: number;
  createdBy: string;
  /** `PROVIDER:SUBJECT` for a user a single sign-on login made (no password; core/sso.ts); absent: a local user. */
  external?: string;
}

/**
 * A login. The session token is only ever known by its SHA-256 (`id`): the database cannot be used
 * to log in. A cookie session (the portal) also has a CSRF token, known the same way.
 */
export interface SessionRecord {
  id: string;
  userId: string;
  kind: 'cookie' | 'cli';
  csrfHash: string;
  createdAt: number;
  expiresAt: number;
  ip: string;
}

/** Roles, weakest first: each holds everything the ones before it hold. `owner` is the whole installation. */
export const ROLES = ['viewer', 'operator', 'deployer', 'maintainer', 'admin', 'owner'] as const;
export type Role = (typeof ROLES)[number];

/**
 * What a route asks for. App actions are checked against the app's team (and the environment, for
 * the ones that change an environment); cluster actions against owner grants.
 *
 * - `any`: any signed-in principal (ping, the API document, one's own session)
 * - `app.read`: status, releases, deployments, events, metrics, builds of an app (viewer)
 * - `app.logs`: its logs (operator)
 * - `app.operate`: restart, scale, reload — no new code (operator)
 * - `app.deploy`: deploy, promote into, roll back, git push, builds (deployer)
 * - `app.config`: read values and write configuration and secrets, exec into containers (maintainer)
 * - `app.secrets`: reveal a secret value (maintainer)
 * - `app.admin`: remove an app, set its webhook source, grant within the team (admin)
 * - `cluster.read`: installation-wide views (registry, top, alert and template lists) (owner)
 * - `cluster.admin`: users, teams, alerts, templates, images, externals (owner)
 */
export const ACTIONS = ['any', 'app.read', 'app.logs', 'app.operate', 'app.deploy', 'app.config', 'app.secrets', 'app.admin', 'cluster.read', 'cluster.admin'] as const;
export type Action = (typeof ACTIONS)[number];

/** The weakest role that may do an action. */
export const ACTION_ROLE: Record<Action, Role> = {
  any: 'viewer', 'app.read': 'viewer', 'app.logs': 'operator', 'app.operate': 'operator', 'app.deploy': 'deployer',
  'app.config': 'maintainer', 'app.secrets': 'maintainer', 'app.admin': 'admin', 'cluster.read': 'owner', 'cluster.admin': 'owner',
};

export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** A role on a team, narrowed to one app and/or one environment (`*`: all). Owner grants have team `*`. */
export interface Grant {
  id: string;
  /** `user:ID` or `token:ID`. */
  subject: string;
  role: Role;
  team: string;
  app: string;
  env: string;
  createdAt: number;
  createdBy: string;
}

/** What an app action is done to: the app, its owning team (none: only owners), the environment if one is changed. */
export interface Target {
  app: string;
  team: string | undefined;
  /** Absent: any environment of the app will do (reads). */
  env?: string;
}

/**
 * True if one of the grants allows the action. A grant for env `test` never allows anything in
 * `prod`; a read (no env in the target) is allowed by a grant on any environment of the app.
 */
export function allows(grants: readonly Pick<Grant, 'role' | 'team' | 'app' | 'env'>[], action: Action, target?: Target): boolean {
  const need = ACTION_ROLE[action];
  for (const g of grants) {
    if (!roleAtLeast(g.role, need)) continue;
    if (g.role === 'owner' && g.team === '*') return true;
    if (action === 'any') return true;
    if (!target || action.startsWith('cluster.')) continue;
    if (target.team === undefined || g.team !== target.team) continue;
    if (g.app !== '*' && g.app !== target.app) continue;
    if (target.env !== undefined && g.env !== '*' && g.env !== target.env) continue;
    return true;
  }
  return false;
}

/** The principal behind a request. */
export interface Principal {
  /** `admin` (the bootstrap token), `user:ID`, `token:ID`. */
  subject: string;
  /** For people and logs: the user's name, the token's name. */
  name: string;
  kind: 'admin' | 'user' | 'token';
  /** How the request proved it: the admin token, a session (bearer or cookie), a scoped API token. */
  via: 'admin-token' | 'session' | 'cookie' | 'api-token' | 'approval';
  sessionId?: string;
  /** The grants that apply (for a scoped token: its own, capped by its creator's). */
  grants: Pick<Grant, 'role' | 'team' | 'app' | 'env'>[];
}

/** The owner grant the bootstrap admin token carries. */
export const OWNER_GRANT = { role: 'owner', team: '*', app: '*', env: '*' } as const;

/** Names of users and teams: what a person types, safe in a URL and a log line. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** A team: owns apps; people get roles on it through grants. */
export interface TeamRecord {
  name: string;
  createdAt: number;
  createdBy: string;
}

/** An API token for CI: scoped by its own grants, expiring, revocable; only its SHA-256 is kept. */
export interface ApiTokenRecord {
  id: string;
  name: string;
  hash: string;
  /** Who made it: its grants never exceed theirs (checked when it is used, not only when it is made). */
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number;
  lastUsedAt: number;
}

/** Store role: users, sessions, teams, app ownership, grants, API tokens (store/auth-store.ts). */
export interface AuthStore {
  addUser(u: UserRecord): void;
  getUser(id: string): UserRecord | undefined;
  userByName(name: string): UserRecord | undefined;
  listUsers(): UserRecord[];
  setPassword(userId: string, hash: string): void;
  /** Deletes the user with their sessions, grants and tokens (and those tokens' grants). */
  deleteUser(userId: string): boolean;

  addSession(s: SessionRecord): void;
  getSession(id: string): SessionRecord | undefined;
  deleteSession(id: string): boolean;
  deleteUserSessions(userId: string): number;
  deleteExpiredSessions(now: number): number;

  addTeam(t: TeamRecord): void;
  getTeam(name: string): TeamRecord | undefined;
  listTeams(): TeamRecord[];
  /** Refused by the caller while the team owns apps; deletes the team's grants. */
  deleteTeam(name: string): boolean;
  /** The team that owns an app (undefined: nobody's yet — only owners may touch it). */
  appTeam(app: string): string | undefined;
  setAppTeam(app: string, team: string | undefined): void;
  teamApps(team?: string): { app: string; team: string }[];

  addGrant(g: Grant): void;
  listGrants(filter?: { subject?: string; team?: string }): Grant[];
  deleteGrant(id: string): boolean;

  addApiToken(t: ApiTokenRecord): void;
  apiTokenByHash(hash: string): ApiTokenRecord | undefined;
  getApiToken(id: string): ApiTokenRecord | undefined;
  listApiTokens(createdBy?: string): ApiTokenRecord[];
  revokeApiToken(id: string, at: number): boolean;
  touchApiToken(id: string, at: number): void;
}

type Scope = Pick<Grant, 'role' | 'team' | 'app' | 'env'>;

/** True if holding `c` implies holding `g` (same or stronger role on the same or a wider scope). */
export function covers(c: Scope, g: Scope): boolean {
  if (!roleAtLeast(c.role, g.role)) return false;
  if (c.role === 'owner' && c.team === '*') return true;
  if (g.role === 'owner' || c.team !== g.team) return false;
  return (c.app === '*' || c.app === g.app) && (c.env === '*' || c.env === g.env);
}

/** A scoped token's grants that its creator still holds: revoking a person's role also narrows their tokens. */
export function capGrants(token: readonly Scope[], creator: readonly Scope[]): Scope[] {
  return token.filter((g) => creator.some((c) => covers(c, g)));
}

/**
 * True if someone holding `grants` may give (or take away) `g`: owners any grant; a team's admin
 * grants within that team what they hold themselves — never owner, never beyond their own app/env.
 */
export function mayGrant(grants: readonly Scope[], g: Scope): boolean {
  return grants.some((c) => (c.role === 'owner' && c.team === '*') || (roleAtLeast(c.role, 'admin') && covers(c, g)));
}

/** The teams a principal has any role in (owners: every team). */
export function teamsOf(grants: readonly Scope[]): Set<string> | 'all' {
  if (grants.some((c) => c.role === 'owner' && c.team === '*')) return 'all';
  return new Set(grants.map((c) => c.team));
}

/** A deploy or promotion waiting for a second person (an environment whose team requires approval). */
export interface ApprovalRecord {
  id: string;
  app: string;
  env: string;
  team: string;
  /** The request as it was made, replayed as its requester once approved. */
  method: string;
  url: string;
  body: string;
  /** `METHOD /route`, for people. */
  action: string;
  requestedBy: string;
  requestedByName: string;
  status: 'pending' | 'approved' | 'denied' | 'failed';
  decidedBy: string;
  createdAt: number;
  decidedAt: number;
  /** What the replay answered (status and a short body), once decided. */
  result: string;
}

/** Store role: environment policies and approvals (store/auth-store.ts). */
export interface ApprovalStore {
  requiresApproval(team: string, env: string): boolean;
  setRequiresApproval(team: string, env: string, required: boolean): void;
  listPolicies(team?: string): { team: string; env: string; requireApproval: boolean }[];
  addApproval(a: ApprovalRecord): void;
  getApproval(id: string): ApprovalRecord | undefined;
  listApprovals(status?: ApprovalRecord['status']): ApprovalRecord[];
  /** Moves a pending approval to its decision; false if it was not pending any more (decided twice). */
  decideApproval(id: string, status: ApprovalRecord['status'], decidedBy: string, at: number, result: string): boolean;
  setApprovalResult(id: string, status: ApprovalRecord['status'], result: string): void;
}

/** The person behind a subject: a token acts for its creator (approving one's own request through one's own token does not count). */
export function personOf(subject: string, tokenCreator: (id: string) => string | undefined): string {
  return subject.startsWith('token:') ? tokenCreator(subject.slice('token:'.length)) ?? subject : subject;
}
