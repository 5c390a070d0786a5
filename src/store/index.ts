/**
 * store: durable desired state (apps, services, releases, deployments) and observed records
 * (instances, events) in SQLite. The only writer of desired state; everything else reads through it.
 */
export { SqliteStore } from './sqlite-store.ts';
export { SqliteAuthStore } from './auth-store.ts';
export { SqliteAuditStore, auditHash } from './audit-store.ts';
