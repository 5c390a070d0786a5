import type Database from 'better-sqlite3';
import { openDatabase } from '../lib/sqlite-migrate.ts';
import type { SecretBox } from '../config/secret-box.ts';

export type CertSource = 'acme' | 'upload';

/** A certificate Berth serves, with its key (decrypted only in memory). */
export interface StoredCert {
  host: string;
  source: CertSource;
  certPem: string;
  keyPem: string;
  issuer: string;
  notBefore: number;
  notAfter: number;
  fingerprint: string;
  updatedAt: number;
}

/** ACME bookkeeping per host: failures in a row, when to try next, why the last try failed, a forced renewal. */
export interface AcmeState {
  host: string;
  failures: number;
  nextAttemptAt: number;
  lastError?: string;
  lastAttemptAt?: number;
  renewRequested: boolean;
}

const MIGRATIONS = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
  -- key_ct/iv/tag: the private key sealed with the secret key (config/secret-box.ts), bound to "tls/HOST".
  CREATE TABLE certs (
    host TEXT PRIMARY KEY, source TEXT NOT NULL CHECK (source IN ('acme', 'upload')),
    cert_pem TEXT NOT NULL, key_ct BLOB NOT NULL, key_iv BLOB NOT NULL, key_tag BLOB NOT NULL,
    issuer TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE acme (
    host TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, last_attempt_at INTEGER, renew_requested INTEGER NOT NULL DEFAULT 0
  );
  `,
];

type CertRow = {
  host: string; source: CertSource; cert_pem: string; key_ct: Buffer; key_iv: Buffer; key_tag: Buffer;
  issuer: string; not_before: number; not_after: number; fingerprint: string; updated_at: number;
};

/**
 * Certificates and their private keys in `DATA/tls.db`: keys sealed with AES-256-GCM under the same
 * key as secrets (outside the database), bound to their host so a row copied to another host does
 * not open. The ACME account key is sealed the same way.
 */
export class CertStore {
  private readonly db: Database.Database;

  constructor(path: string, private readonly box: SecretBox) {
    // A replaced or removed key is overwritten, not left in free pages.
    this.db = openDatabase(path, MIGRATIONS, { secureDelete: true });
  }

  get(host: string): StoredCert | undefined {
    const r = this.db.prepare('SELECT * FROM certs WHERE host = ?').get(host) as CertRow | undefined;
    return r ? this.open(r) : undefined;
  }

  /** The certificate's facts without opening its key. */
  info(host: string): Omit<StoredCert, 'keyPem' | 'certPem'> | undefined {
    const r = this.db.prepare('SELECT host, source, issuer, not_before, not_after, fingerprint, updated_at FROM certs WHERE host = ?').get(host) as CertRow | undefined;
    return r ? { host: r.host, source: r.source, issuer: r.issuer, notBefore: r.not_before, notAfter: r.not_after, fingerprint: r.fingerprint, updatedAt: r.updated_at } : undefined;
  }

  list(): StoredCert[] {
    return (this.db.prepare('SELECT * FROM certs ORDER BY host').all() as CertRow[]).map((r) => this.open(r));
  }

  /** Stores (or replaces) a host's certificate; an ACME success also clears its failures. */
  put(c: StoredCert): void {
    const s = this.box.seal(c.keyPem, `tls/${c.host}`);
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO certs (host, source, cert_pem, key_ct, key_iv, key_tag, issuer, not_before, not_after, fingerprint, updated_at)
        VALUES (@host, @source, @cert, @ct, @iv, @tag, @issuer, @nb, @na, @fp, @at)
        ON CONFLICT (host) DO UPDATE SET source = @source, cert_pem = @cert, key_ct = @ct, key_iv = @iv, key_tag = @tag,
          issuer = @issuer, not_before = @nb, not_after = @na, fingerprint = @fp, updated_at = @at`)
        .run({ host: c.host, source: c.source, cert: c.certPem, ct: s.ciphertext, iv: s.iv, tag: s.tag, issuer: c.issuer, nb: c.notBefore, na: c.notAfter, fp: c.fingerprint, at: c.updatedAt });
      this.db.prepare('DELETE FROM acme WHERE host = ?').run(c.host);
    })();
  }

  /** Removes a host's certificate and its ACME state; false when there was none. */
  remove(host: string): boolean {
    return this.db.transaction(() => {
      const n = this.db.prepare('DELETE FROM certs WHERE host = ?').run(host).changes;
      this.db.prepare('DELETE FROM acme WHERE host = ?').run(host);
      return n > 0;
    })();
  }

  acmeState(host: string): AcmeState {
    const r = this.db.prepare('SELECT * FROM acme WHERE host = ?').get(host) as
      { failures: number; next_attempt_at: number; last_error: string | null; last_attempt_at: number | null; renew_requested: number } | undefined;
    if (!r) return { host, failures: 0, nextAttemptAt: 0, renewRequested: false };
    return {
      host, failures: r.failures, nextAttemptAt: r.next_attempt_at, renewRequested: r.renew_requested === 1,
      ...(r.last_error !== null ? { lastError: r.last_error } : {}), ...(r.last_attempt_at !== null ? { lastAttemptAt: r.last_attempt_at } : {}),
    };
  }

  putAcmeState(s: AcmeState): void {
    this.db.prepare(`INSERT INTO acme (host, failures, next_attempt_at, last_error, last_attempt_at, renew_requested) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (host) DO UPDATE SET failures = excluded.failures, next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error,
        last_attempt_at = excluded.last_attempt_at, renew_requested = excluded.renew_requested`)
      .run(s.host, s.failures, s.nextAttemptAt, s.lastError ?? null, s.lastAttemptAt ?? null, s.renewRequested ? 1 : 0);
  }

  /** The ACME account key (PEM), created by `create` on first use and kept sealed. */
  accountKey(directoryUrl: string, create: () => string): string {
    const name = `acme-account:${directoryUrl}`;
    const r = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(name) as { value: Buffer } | undefined;
    if (r) {
      const j = JSON.parse(r.value.toString('utf8')) as { ct: string; iv: string; tag: string };
      return this.box.open({ ciphertext: Buffer.from(j.ct, 'base64'), iv: Buffer.from(j.iv, 'base64'), tag: Buffer.from(j.tag, 'base64') }, name);
    }
    const pem = create();
    const s = this.box.seal(pem, name);
    const value = Buffer.from(JSON.stringify({ ct: s.ciphertext.toString('base64'), iv: s.iv.toString('base64'), tag: s.tag.toString('base64') }));
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(name, value);
    return pem;
  }

  close(): void {
    this.db.close();
  }

  private open(r: CertRow): StoredCert {
    return {
      host: r.host, source: r.source, certPem: r.cert_pem, keyPem: this.box.open({ ciphertext: r.key_ct, iv: r.key_iv, tag: r.key_tag }, `tls/${r.host}`),
      issuer: r.issuer, notBefore: r.not_before, notAfter: r.not_after, fingerprint: r.fingerprint, updatedAt: r.updated_at,
    };
  }
}
