import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { openDatabase } from '../lib/sqlite-migrate.ts';
import type { AuditEntry, AuditFilter, AuditInput, AuditStore, AuditVerification } from '../core/audit.ts';

/**
 * The audit log in its own database (`audit.db`): one row per mutating request and per secret read.
 * Each row's hash is SHA-256 over the previous row's hash and the row's fields, so changing, adding or
 * removing a row in the middle breaks the chain at that row. Triggers refuse UPDATE and DELETE (the
 * retention prune drops them for its one delete and records the last removed hash as the anchor).
 * Someone with write access to the file can drop the triggers — `verify` is what finds that.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, actor TEXT NOT NULL, actor_name TEXT NOT NULL, ip TEXT NOT NULL,
     action TEXT NOT NULL, app TEXT NOT NULL, env TEXT NOT NULL, request TEXT NOT NULL, result TEXT NOT NULL, status INTEGER NOT NULL,
     prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
   CREATE INDEX audit_ts ON audit(ts);
   CREATE INDEX audit_app ON audit(app);
   CREATE TABLE audit_anchor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
   INSERT INTO audit_anchor (id, seq, hash) VALUES (1, 0, '');
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`,
];

const GENESIS = '0'.repeat(64);

/** The hash of a row: over the previous hash and every field, in a fixed order. */
export function auditHash(prevHash: string, e: AuditInput & { seq: number }): string {
  const fields = [e.seq, e.ts, e.actor, e.actorName, e.ip, e.action, e.app, e.env, e.request, e.result, e.status];
  return createHash('sha256').update(prevHash).update('\n').update(JSON.stringify(fields)).digest('hex');
}

type Row = Record<string, unknown>;

function toEntry(r: Row): AuditEntry {
  return {
    seq: Number(r.seq), ts: Number(r.ts), actor: String(r.actor), actorName: String(r.actor_name), ip: String(r.ip), action: String(r.action),
    app: String(r.app), env: String(r.env), request: String(r.request), result: String(r.result), status: Number(r.status),
    prevHash: String(r.prev_hash), hash: String(r.hash),
  };
}

export class SqliteAuditStore implements AuditStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = openDatabase(path, MIGRATIONS, { secureDelete: false });
  }

  append(e: AuditInput): AuditEntry {
    return this.db.transaction(() => {
      const last = this.db.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
      const anchor = this.anchor();
      const seq = (last?.seq ?? anchor.seq) + 1;
      const prevHash = last?.hash ?? (anchor.hash || GENESIS);
      const hash = auditHash(prevHash, { ...e, seq });
      this.db.prepare(`INSERT INTO audit (seq, ts, actor, actor_name, ip, action, app, env, request, result, status, prev_hash, hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(seq, e.ts, e.actor, e.actorName, e.ip, e.action, e.app, e.env, e.request, e.result, e.status, prevHash, hash);
      return { ...e, seq, prevHash, hash };
    }).immediate();
  }

  list(f: AuditFilter): AuditEntry[] {
    const rows = this.db.prepare(`SELECT * FROM audit WHERE (@actor IS NULL OR actor = @actor OR actor_name = @actor) AND (@app IS NULL OR app = @app)
      AND (@action IS NULL OR action LIKE @action) AND ts >= @since AND ts <= @until AND seq > @after ORDER BY seq DESC LIMIT @limit`).all({
      actor: f.actor ?? null, app: f.app ?? null, action: f.action ? `%${f.action}%` : null, since: f.since ?? 0, until: f.until ?? Number.MAX_SAFE_INTEGER,
      after: f.afterSeq ?? 0, limit: f.limit ?? 1000,
    }) as Row[];
    return rows.reverse().map(toEntry);
  }

  verify(): AuditVerification {
    const anchor = this.anchor();
    let prev = anchor.hash || GENESIS;
    let expectSeq = anchor.seq + 1;
    let checked = 0;
    for (const r of this.db.prepare('SELECT * FROM audit ORDER BY seq').iterate() as IterableIterator<Row>) {
      const e = toEntry(r);
      checked++;
      const bad = (reason: string): AuditVerification => ({ ok: false, checked, firstBad: { seq: e.seq, reason }, retainedFrom: anchor.seq + 1 });
      if (e.seq !== expectSeq) return bad(`row ${expectSeq} is missing (found ${e.seq} next)`);
      if (e.prevHash !== prev) return bad('its link to the previous row does not match (a row before it was changed, removed or inserted)');
      if (auditHash(prev, e) !== e.hash) return bad('its contents do not match its hash (the row was edited)');
      prev = e.hash;
      expectSeq++;
    }
    return { ok: true, checked, retainedFrom: anchor.seq + 1 };
  }

  prune(before: number): number {
    return this.db.transaction(() => {
      const last = this.db.prepare('SELECT seq, hash FROM audit WHERE ts < ? ORDER BY seq DESC LIMIT 1').get(before) as { seq: number; hash: string } | undefined;
      if (!last) return 0;
      this.db.exec('DROP TRIGGER IF EXISTS audit_no_delete');
      const n = this.db.prepare('DELETE FROM audit WHERE seq <= ?').run(last.seq).changes;
      this.db.exec(`CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`);
      this.db.prepare('UPDATE audit_anchor SET seq = ?, hash = ? WHERE id = 1').run(last.seq, last.hash);
      return n;
    }).immediate();
  }

  private anchor(): { seq: number; hash: string } {
    return this.db.prepare('SELECT seq, hash FROM audit_anchor WHERE id = 1').get() as { seq: number; hash: string };
  }

  close(): void {
    this.db.close();
  }
}
