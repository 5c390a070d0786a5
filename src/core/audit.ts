/**
 * The audit log's records: who did what, from where, to what, with which result — append-only and
 * hash-chained (each row's hash covers the previous row's), so an edited or deleted row is found by
 * `verify`. The chain itself is computed in store/audit-store.ts (node:crypto); this file is types.
 */
export interface AuditInput {
  ts: number;
  /** `admin`, `user:ID`, `token:ID`, `anonymous`, `webhook:PROVIDER`, `git:SUBJECT`. */
  actor: string;
  /** The user's or token's name as people know it (a failed login: the name that was tried). */
  actorName: string;
  /** The client address. */
  ip: string;
  /** `METHOD /route` as declared (`POST /v1/apps/:app/scale`), or a named action (`git.push`). */
  action: string;
  app: string;
  env: string;
  /** What was asked (the request, secrets and passwords redacted), as JSON. */
  request: string;
  /** What came of it: the status and, for a failure, the error code and message; for a success, a short summary. */
  result: string;
  status: number;
}

export interface AuditEntry extends AuditInput {
  seq: number;
  prevHash: string;
  hash: string;
}

export interface AuditFilter {
  actor?: string;
  app?: string;
  action?: string;
  since?: number;
  until?: number;
  afterSeq?: number;
  limit?: number;
}

export interface AuditVerification {
  ok: boolean;
  /** Rows checked. */
  checked: number;
  /** The first row whose hash or link does not hold. */
  firstBad?: { seq: number; reason: string };
  /** Rows before this were removed by the retention policy (the chain starts from their last hash). */
  retainedFrom: number;
}

/** Store role: the audit log. */
export interface AuditStore {
  append(e: AuditInput): AuditEntry;
  list(f: AuditFilter): AuditEntry[];
  verify(): AuditVerification;
  /** Deletes entries older than `before` (retention), keeping the chain verifiable from the first kept row. */
  prune(before: number): number;
}
