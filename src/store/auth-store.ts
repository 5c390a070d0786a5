import type Database from 'better-sqlite3';
import { openDatabase } from '../lib/sqlite-migrate.ts';
import type { SsoProvider, SsoStore } from '../core/sso.ts';
import type { Exemption, GuardKey, GuardPolicy, GuardStore, PolicyLayer, PolicyScope } from '../core/guard.ts';
import type { PoolQuota, PoolRecord, PoolStore } from '../core/pools.ts';
import type { ApiTokenRecord, ApprovalRecord, ApprovalStore, AuthStore, Grant, Role, SessionRecord, TeamRecord, UserRecord } from '../core/auth.ts';

/**
 * Who may do what, in its own database (`auth.db`, private to root): users (password hashes),
 * sessions (token hashes), teams and the apps they own, grants, API tokens (hashes). Kept apart from
 * `berth.db` so that desired state and credentials have separate files, separate migrations and
 * separate backups.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL);
   CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, kind TEXT NOT NULL, csrf_hash TEXT NOT NULL, created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL, ip TEXT NOT NULL);
   CREATE INDEX sessions_user ON sessions(user_id);
   CREATE TABLE teams (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL, created_by TEXT NOT NULL);
   CREATE TABLE app_teams (app TEXT PRIMARY KEY, team TEXT NOT NULL);
   CREATE TABLE grants (id TEXT PRIMARY KEY, subject TEXT NOT NULL, role TEXT NOT NULL, team TEXT NOT NULL, app TEXT NOT NULL, env TEXT NOT NULL,
     created_at INTEGER NOT NULL, created_by TEXT NOT NULL, UNIQUE (subject, role, team, app, env));
   CREATE INDEX grants_subject ON grants(subject);
   CREATE TABLE api_tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0, last_used_at INTEGER NOT NULL DEFAULT 0);`,
  // Environments whose deploys and promotions need a second person, and the requests waiting for one.
  `CREATE TABLE env_policies (team TEXT NOT NULL, env TEXT NOT NULL, require_approval INTEGER NOT NULL, PRIMARY KEY (team, env));
   CREATE TABLE approvals (id TEXT PRIMARY KEY, app TEXT NOT NULL, env TEXT NOT NULL, team TEXT NOT NULL, method TEXT NOT NULL, url TEXT NOT NULL,
     body TEXT NOT NULL, action TEXT NOT NULL, requested_by TEXT NOT NULL, requested_by_name TEXT NOT NULL, status TEXT NOT NULL,
     decided_by TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, decided_at INTEGER NOT NULL DEFAULT 0, result TEXT NOT NULL DEFAULT '');`,
  // Single sign-on: users a provider made (no password) and the providers (settings as JSON, the secret sealed).
  `ALTER TABLE users ADD COLUMN external TEXT NOT NULL DEFAULT '';
   CREATE TABLE sso_providers (name TEXT PRIMARY KEY, settings TEXT NOT NULL, sealed_secret TEXT NOT NULL DEFAULT '');`,
  // Container guardrails (core/guard.ts): every version of every scope's policy layer ('' = any), and exemptions.
  `CREATE TABLE guard_policies (team TEXT NOT NULL, env TEXT NOT NULL, version INTEGER NOT NULL, policy TEXT NOT NULL, set_by TEXT NOT NULL,
     set_at INTEGER NOT NULL, PRIMARY KEY (team, env, version));
   CREATE TABLE guard_exemptions (id TEXT PRIMARY KEY, app TEXT NOT NULL, service TEXT NOT NULL, env TEXT NOT NULL, key TEXT NOT NULL,
     reason TEXT NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0);
   CREATE INDEX guard_exemptions_app ON guard_exemptions(app);`,
  // Pools as objects (core/pools.ts): quotas ('' = no limit of that kind) and the teams granted each; default is open to every team.
  `CREATE TABLE pools (name TEXT PRIMARY KEY, quota TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL, created_by TEXT NOT NULL);
   CREATE TABLE pool_grants (pool TEXT NOT NULL, team TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL, PRIMARY KEY (pool, team));
   INSERT INTO pools (name, quota, created_at, created_by) VALUES ('default', '{}', 0, 'berth');
   INSERT INTO pool_grants (pool, team, created_at, created_by) VALUES ('default', '*', 0, 'berth');`,
];

type Row = Record<string, unknown>;

export class SqliteAuthStore implements AuthStore, ApprovalStore, SsoStore, GuardStore, PoolStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = openDatabase(path, MIGRATIONS, { secureDelete: true });
  }

  addUser(u: UserRecord): void {
    this.db.prepare('INSERT INTO users (id, name, password_hash, created_at, created_by, external) VALUES (?, ?, ?, ?, ?, ?)')
      .run(u.id, u.name, u.passwordHash, u.createdAt, u.createdBy, u.external ?? '');
  }
  getUser(id: string): UserRecord | undefined {
    const r = this.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as Row | undefined;
    return r && toUser(r);
  }
  userByName(name: string): UserRecord | undefined {
    const r = this.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as Row | undefined;
    return r && toUser(r);
  }
  listUsers(): UserRecord[] {
    return (this.db.prepare('SELECT * FROM users ORDER BY name').all() as Row[]).map(toUser);
  }
  setPassword(userId: string, hash: string): void {
    this.db.prepare('UPDATE users SET password_hash = ? WHERE id = ?').run(hash, userId);
  }
  deleteUser(userId: string): boolean {
    return this.db.transaction(() => {
      const subject = `user:${userId}`;
      const tokens = this.db.prepare('SELECT id FROM api_tokens WHERE created_by = ?').all(subject) as { id: string }[];
      for (const t of tokens) this.db.prepare('DELETE FROM grants WHERE subject = ?').run(`token:${t.id}`);
      this.db.prepare('DELETE FROM api_tokens WHERE created_by = ?').run(subject);
      this.db.prepare('DELETE FROM grants WHERE subject = ?').run(subject);
      this.db.prepare('DELETE FROM sessions WHERE user_id = ?').run(userId);
      return this.db.prepare('DELETE FROM users WHERE id = ?').run(userId).changes > 0;
    })();
  }

  addSession(s: SessionRecord): void {
    this.db.prepare('INSERT INTO sessions (id, user_id, kind, csrf_hash, created_at, expires_at, ip) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(s.id, s.userId, s.kind, s.csrfHash, s.createdAt, s.expiresAt, s.ip);
  }
  getSession(id: string): SessionRecord | undefined {
    const r = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as Row | undefined;
    return r && {
      id: String(r.id), userId: String(r.user_id), kind: r.kind as SessionRecord['kind'], csrfHash: String(r.csrf_hash),
      createdAt: Number(r.created_at), expiresAt: Number(r.expires_at), ip: String(r.ip),
    };
  }
  deleteSession(id: string): boolean {
    return this.db.prepare('DELETE FROM sessions WHERE id = ?').run(id).changes > 0;
  }
  deleteUserSessions(userId: string): number {
    return this.db.prepare('DELETE FROM sessions WHERE user_id = ?').run(userId).changes;
  }
  deleteExpiredSessions(now: number): number {
    return this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes;
  }

  addTeam(t: TeamRecord): void {
    this.db.prepare('INSERT INTO teams (name, created_at, created_by) VALUES (?, ?, ?)').run(t.name, t.createdAt, t.createdBy);
  }
  getTeam(name: string): TeamRecord | undefined {
    const r = this.db.prepare('SELECT * FROM teams WHERE name = ?').get(name) as Row | undefined;
    return r && toTeam(r);
  }
  listTeams(): TeamRecord[] {
    return (this.db.prepare('SELECT * FROM teams ORDER BY name').all() as Row[]).map(toTeam);
  }
  deleteTeam(name: string): boolean {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM grants WHERE team = ?').run(name);
      this.db.prepare('DELETE FROM pool_grants WHERE team = ?').run(name);
      return this.db.prepare('DELETE FROM teams WHERE name = ?').run(name).changes > 0;
    })();
  }
  appTeam(app: string): string | undefined {
    const r = this.db.prepare('SELECT team FROM app_teams WHERE app = ?').get(app) as { team: string } | undefined;
    return r?.team;
  }
  setAppTeam(app: string, team: string | undefined): void {
    if (team === undefined) this.db.prepare('DELETE FROM app_teams WHERE app = ?').run(app);
    else this.db.prepare('INSERT INTO app_teams (app, team) VALUES (?, ?) ON CONFLICT(app) DO UPDATE SET team = excluded.team').run(app, team);
  }
  teamApps(team?: string): { app: string; team: string }[] {
    return this.db.prepare('SELECT app, team FROM app_teams WHERE (@team IS NULL OR team = @team) ORDER BY app').all({ team: team ?? null }) as
      { app: string; team: string }[];
  }

  addGrant(g: Grant): void {
    this.db.prepare('INSERT INTO grants (id, subject, role, team, app, env, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(g.id, g.subject, g.role, g.team, g.app, g.env, g.createdAt, g.createdBy);
  }
  listGrants(filter: { subject?: string; team?: string } = {}): Grant[] {
    return (this.db.prepare(`SELECT * FROM grants WHERE (@subject IS NULL OR subject = @subject) AND (@team IS NULL OR team = @team)
      ORDER BY team, subject, app, env, role`).all({ subject: filter.subject ?? null, team: filter.team ?? null }) as Row[]).map((r) => ({
      id: String(r.id), subject: String(r.subject), role: r.role as Role, team: String(r.team), app: String(r.app), env: String(r.env),
      createdAt: Number(r.created_at), createdBy: String(r.created_by),
    }));
  }
  deleteGrant(id: string): boolean {
    return this.db.prepare('DELETE FROM grants WHERE id = ?').run(id).changes > 0;
  }

  addApiToken(t: ApiTokenRecord): void {
    this.db.prepare('INSERT INTO api_tokens (id, name, hash, created_by, created_at, expires_at, revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(t.id, t.name, t.hash, t.createdBy, t.createdAt, t.expiresAt, t.revokedAt, t.lastUsedAt);
  }
  apiTokenByHash(hash: string): ApiTokenRecord | undefined {
    const r = this.db.prepare('SELECT * FROM api_tokens WHERE hash = ?').get(hash) as Row | undefined;
    return r && toToken(r);
  }
  getApiToken(id: string): ApiTokenRecord | undefined {
    const r = this.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined;
    return r && toToken(r);
  }
  listApiTokens(createdBy?: string): ApiTokenRecord[] {
    return (this.db.prepare('SELECT * FROM api_tokens WHERE (@by IS NULL OR created_by = @by) ORDER BY created_at').all({ by: createdBy ?? null }) as Row[])
      .map(toToken);
  }
  revokeApiToken(id: string, at: number): boolean {
    return this.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0').run(at, id).changes > 0;
  }
  touchApiToken(id: string, at: number): void {
    this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(at, id);
  }

  requiresApproval(team: string, env: string): boolean {
    const r = this.db.prepare('SELECT require_approval FROM env_policies WHERE team = ? AND env = ?').get(team, env) as { require_approval: number } | undefined;
    return r?.require_approval === 1;
  }
  setRequiresApproval(team: string, env: string, required: boolean): void {
    this.db.prepare(`INSERT INTO env_policies (team, env, require_approval) VALUES (?, ?, ?)
      ON CONFLICT(team, env) DO UPDATE SET require_approval = excluded.require_approval`).run(team, env, required ? 1 : 0);
  }
  listPolicies(team?: string): { team: string; env: string; requireApproval: boolean }[] {
    return (this.db.prepare('SELECT * FROM env_policies WHERE (@team IS NULL OR team = @team) ORDER BY team, env').all({ team: team ?? null }) as Row[])
      .map((r) => ({ team: String(r.team), env: String(r.env), requireApproval: Number(r.require_approval) === 1 }));
  }
  addApproval(a: ApprovalRecord): void {
    this.db.prepare(`INSERT INTO approvals (id, app, env, team, method, url, body, action, requested_by, requested_by_name, status, decided_by, created_at, decided_at, result)
      VALUES (@id, @app, @env, @team, @method, @url, @body, @action, @requestedBy, @requestedByName, @status, @decidedBy, @createdAt, @decidedAt, @result)`).run(a);
  }
  getApproval(id: string): ApprovalRecord | undefined {
    const r = this.db.prepare('SELECT * FROM approvals WHERE id = ?').get(id) as Row | undefined;
    return r && toApproval(r);
  }
  listApprovals(status?: ApprovalRecord['status']): ApprovalRecord[] {
    return (this.db.prepare('SELECT * FROM approvals WHERE (@status IS NULL OR status = @status) ORDER BY created_at DESC LIMIT 500').all({ status: status ?? null }) as Row[])
      .map(toApproval);
  }
  decideApproval(id: string, status: ApprovalRecord['status'], decidedBy: string, at: number, result: string): boolean {
    return this.db.prepare("UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, result = ? WHERE id = ? AND status = 'pending'")
      .run(status, decidedBy, at, result, id).changes > 0;
  }
  /** Records the result of an approved request's replay. */
  setApprovalResult(id: string, status: ApprovalRecord['status'], result: string): void {
    this.db.prepare('UPDATE approvals SET status = ?, result = ? WHERE id = ?').run(status, result, id);
  }

  putProvider(p: SsoProvider, sealedSecret: string | undefined): void {
    this.db.prepare(`INSERT INTO sso_providers (name, settings, sealed_secret) VALUES (?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET settings = excluded.settings, sealed_secret = CASE WHEN ? THEN excluded.sealed_secret ELSE sealed_secret END`)
      .run(p.name, JSON.stringify(p), sealedSecret ?? '', sealedSecret === undefined ? 0 : 1);
  }
  getProvider(name: string): { provider: SsoProvider; sealedSecret: string } | undefined {
    const r = this.db.prepare('SELECT settings, sealed_secret FROM sso_providers WHERE name = ?').get(name) as { settings: string; sealed_secret: string } | undefined;
    return r && { provider: JSON.parse(r.settings) as SsoProvider, sealedSecret: r.sealed_secret };
  }
  listProviders(): SsoProvider[] {
    return (this.db.prepare('SELECT settings FROM sso_providers ORDER BY name').all() as { settings: string }[]).map((r) => JSON.parse(r.settings) as SsoProvider);
  }
  deleteProvider(name: string): boolean {
    return this.db.prepare('DELETE FROM sso_providers WHERE name = ?').run(name).changes > 0;
  }
  policyLayers(): PolicyLayer[] {
    return (this.db.prepare(`SELECT p.* FROM guard_policies p WHERE p.version = (SELECT MAX(version) FROM guard_policies q WHERE q.team = p.team AND q.env = p.env)
      ORDER BY p.team, p.env`).all() as Row[]).map(toLayer);
  }
  policyHistory(scope: PolicyScope): PolicyLayer[] {
    return (this.db.prepare('SELECT * FROM guard_policies WHERE team = ? AND env = ? ORDER BY version DESC').all(scope.team, scope.env) as Row[]).map(toLayer);
  }
  setPolicy(scope: PolicyScope, policy: GuardPolicy, setBy: string, setAt: number): PolicyLayer {
    return this.db.transaction(() => {
      const r = this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM guard_policies WHERE team = ? AND env = ?').get(scope.team, scope.env) as { v: number };
      const layer: PolicyLayer = { team: scope.team, env: scope.env, version: r.v + 1, policy, setBy, setAt };
      this.db.prepare('INSERT INTO guard_policies (team, env, version, policy, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(layer.team, layer.env, layer.version, JSON.stringify(policy), setBy, setAt);
      return layer;
    })();
  }
  addExemption(e: Exemption): void {
    this.db.prepare(`INSERT INTO guard_exemptions (id, app, service, env, key, reason, created_by, created_at, expires_at, revoked_at)
      VALUES (@id, @app, @service, @env, @key, @reason, @createdBy, @createdAt, @expiresAt, @revokedAt)`).run(e);
  }
  getExemption(id: string): Exemption | undefined {
    const r = this.db.prepare('SELECT * FROM guard_exemptions WHERE id = ?').get(id) as Row | undefined;
    return r && toExemption(r);
  }
  listExemptions(app?: string): Exemption[] {
    return (this.db.prepare('SELECT * FROM guard_exemptions WHERE (@app IS NULL OR app = @app) ORDER BY created_at, id').all({ app: app ?? null }) as Row[]).map(toExemption);
  }
  revokeExemption(id: string, at: number): boolean {
    return this.db.prepare('UPDATE guard_exemptions SET revoked_at = ? WHERE id = ? AND revoked_at = 0').run(at, id).changes > 0;
  }

  listPools(): PoolRecord[] {
    const grants = this.db.prepare('SELECT pool, team FROM pool_grants ORDER BY pool, team').all() as { pool: string; team: string }[];
    return (this.db.prepare('SELECT * FROM pools ORDER BY name').all() as Row[]).map((r) => toPool(r, grants.filter((g) => g.pool === r.name).map((g) => g.team)));
  }
  getPool(name: string): PoolRecord | undefined {
    const r = this.db.prepare('SELECT * FROM pools WHERE name = ?').get(name) as Row | undefined;
    if (!r) return undefined;
    return toPool(r, (this.db.prepare('SELECT team FROM pool_grants WHERE pool = ? ORDER BY team').all(name) as { team: string }[]).map((g) => g.team));
  }
  setPoolQuota(name: string, quota: PoolQuota, by: string, at: number): { before: PoolRecord | undefined; after: PoolRecord } {
    return this.db.transaction(() => {
      const before = this.getPool(name);
      this.db.prepare(`INSERT INTO pools (name, quota, created_at, created_by) VALUES (?, ?, ?, ?)
        ON CONFLICT(name) DO UPDATE SET quota = excluded.quota`).run(name, JSON.stringify(quota), at, by);
      return { before, after: this.getPool(name)! };
    })();
  }
  grantPool(name: string, team: string, by: string, at: number): boolean {
    return this.db.transaction(() => {
      this.db.prepare("INSERT INTO pools (name, quota, created_at, created_by) VALUES (?, '{}', ?, ?) ON CONFLICT(name) DO NOTHING").run(name, at, by);
      return this.db.prepare('INSERT INTO pool_grants (pool, team, created_at, created_by) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING').run(name, team, at, by).changes > 0;
    })();
  }
  revokePool(name: string, team: string): boolean {
    return this.db.prepare('DELETE FROM pool_grants WHERE pool = ? AND team = ?').run(name, team).changes > 0;
  }

  close(): void {
    this.db.close();
  }
}

function toPool(r: Row, teams: string[]): PoolRecord {
  return { name: String(r.name), quota: JSON.parse(String(r.quota)) as PoolQuota, teams, createdAt: Number(r.created_at), createdBy: String(r.created_by) };
}
function toLayer(r: Row): PolicyLayer {
  return { team: String(r.team), env: String(r.env), version: Number(r.version), policy: JSON.parse(String(r.policy)) as GuardPolicy, setBy: String(r.set_by), setAt: Number(r.set_at) };
}
function toExemption(r: Row): Exemption {
  return {
    id: String(r.id), app: String(r.app), service: String(r.service), env: String(r.env), key: r.key as GuardKey, reason: String(r.reason),
    createdBy: String(r.created_by), createdAt: Number(r.created_at), expiresAt: Number(r.expires_at), revokedAt: Number(r.revoked_at),
  };
}

function toApproval(r: Row): ApprovalRecord {
  return {
    id: String(r.id), app: String(r.app), env: String(r.env), team: String(r.team), method: String(r.method), url: String(r.url), body: String(r.body),
    action: String(r.action), requestedBy: String(r.requested_by), requestedByName: String(r.requested_by_name), status: r.status as ApprovalRecord['status'],
    decidedBy: String(r.decided_by), createdAt: Number(r.created_at), decidedAt: Number(r.decided_at), result: String(r.result),
  };
}

function toUser(r: Row): UserRecord {
  return {
    id: String(r.id), name: String(r.name), passwordHash: String(r.password_hash), createdAt: Number(r.created_at), createdBy: String(r.created_by),
    ...(r.external ? { external: String(r.external) } : {}),
  };
}
function toTeam(r: Row): TeamRecord {
  return { name: String(r.name), createdAt: Number(r.created_at), createdBy: String(r.created_by) };
}
function toToken(r: Row): ApiTokenRecord {
  return {
    id: String(r.id), name: String(r.name), hash: String(r.hash), createdBy: String(r.created_by), createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at), revokedAt: Number(r.revoked_at), lastUsedAt: Number(r.last_used_at),
  };
}
