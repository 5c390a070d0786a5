/**
 * Property tests (fast-check) over EVERY API route (src/api/permissions.ts lists them all): inject()
 * with arbitrary path parameters, query strings and JSON bodies, as the owner. Whatever comes in:
 * never a 5xx, never a stack trace or a server path in the answer, always a JSON error body for a
 * refusal — and a refusal changes nothing: the databases (all but the audit log, which records the
 * refusal) are compared before and after. Bounded here (BERTH_FUZZ_RUNS, default 12 per route:
 * seconds); `npm run fuzz` runs many more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { TOKEN, serviceSpec, withTestApi, type TestApi } from '../../test/helpers/api-inject.ts';
import { databaseSnapshot } from '../../test/helpers/db-snapshot.ts';
import { ROUTE_PERMISSIONS } from './permissions.ts';

const RUNS = Number(process.env.BERTH_FUZZ_RUNS ?? 12);
// The bounded run in the unit suite uses a fixed seed (a CI run is reproducible); `npm run fuzz` (BERTH_FUZZ_RUNS set) explores new seeds.
const SEED = process.env.BERTH_FUZZ_SEED !== undefined ? Number(process.env.BERTH_FUZZ_SEED) : process.env.BERTH_FUZZ_RUNS === undefined ? 20261201 : undefined;

/** Streams run until the client goes away: their first answer is what a payload can break, checked with a short-lived request elsewhere. */
const STREAMING = (route: string) => /\/stream$/.test(route) || route === 'GET /v1/apps/:app/logs';

const FIELDS = [
  'env', 'spec', 'service', 'services', 'replicas', 'to', 'from', 'name', 'role', 'team', 'app', 'user', 'password', 'policy', 'key', 'reason', 'expires',
  'grants', 'requireApproval', 'value', 'values', 'keys', 'source', 'force', 'command', 'rule', 'host', 'remote', 'secret', 'cert', 'warnings', 'code',
  'dry_run', 'limit', 'after', 'since', 'q', 'status', 'format', 'instance', 'argv', 'timeout', 'template', 'dest', 'address', 'port', 'ttl', 'id',
  'username', 'registry', 'keep', 'images', 'version', 'history', 'follow', 'signal', 'config',
];
const word = fc.oneof(
  fc.constantFrom('shop', 'web', 'prod', 'test', 'id1', 'r1', '*', '', '..', '%2e%2e', 'a'.repeat(300), '0', '-1', 'true', 'null', '{}', '[]', '__proto__', 'constructor'),
  fc.string({ maxLength: 20 }),
);
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, word, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), word), tie('v'), { maxKeys: 5 })),
})).v;
const body = fc.oneof(
  json,
  fc.dictionary(fc.constantFrom(...FIELDS), json, { maxKeys: 6 }),
  // Near-valid deploys: a real service spec with one field replaced.
  fc.tuple(fc.constantFrom(...Object.keys(serviceSpec('web'))), json).map(([k, v]) => ({ env: 'prod', spec: { name: 'shop', services: { web: { ...serviceSpec('web'), [k]: v } } } })),
);
const query = fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), word), word, { maxKeys: 4 });

function urlOf(path: string, params: string[], q: Record<string, string>): string {
  let i = 0;
  const url = path.replace(/:[a-zA-Z]+|\*/g, () => encodeURIComponent(params[i++ % params.length] || 'x'));
  const qs = new URLSearchParams(Object.entries(q).filter(([k]) => k !== 'follow')).toString();
  return qs ? `${url}?${qs}` : url;
}

function changedTables(a: Record<string, Record<string, unknown[]>>, b: Record<string, Record<string, unknown[]>>): string {
  const out: string[] = [];
  for (const db of new Set([...Object.keys(a), ...Object.keys(b)])) {
    for (const t of new Set([...Object.keys(a[db] ?? {}), ...Object.keys(b[db] ?? {})])) {
      if (JSON.stringify(a[db]?.[t]) !== JSON.stringify(b[db]?.[t])) out.push(`${db}/${t}: ${JSON.stringify(b[db]?.[t]).slice(0, 300)}`);
    }
  }
  return out.join('; ');
}

type Snapshot = Record<string, Record<string, unknown[]>>;

/**
 * databaseSnapshot(dir) — every row of every table of the databases in `dir` but audit.db — read over
 * read-only connections kept open for the run: opening the databases and preparing the statements
 * twice for each of ~1,800 cases cost more than the requests. Each read is a fresh read of what is
 * committed (no transaction is held between reads); a database that appears later is opened then.
 */
function snapshotReader(dir: string): { read(): Snapshot; close(): void } {
  const dbs = new Map<string, { db: Database.Database; tables: Database.Statement; rows: Map<string, Database.Statement> }>();
  return {
    read() {
      const out: Snapshot = {};
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.db') && x !== 'audit.db').sort()) {
        let d = dbs.get(f);
        if (!d) {
          const db = new Database(join(dir, f), { readonly: true, fileMustExist: true });
          d = { db, tables: db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"), rows: new Map() };
          dbs.set(f, d);
        }
        const { tables, rows, db } = d;
        out[f] = Object.fromEntries((tables.all() as { name: string }[]).map(({ name }) => {
          let st = rows.get(name);
          if (!st) rows.set(name, (st = db.prepare(`SELECT * FROM "${name}"`)));
          return [name, st.all()];
        }));
      }
      return out;
    },
    close() {
      for (const d of dbs.values()) d.db.close();
    },
  };
}

function seed(t: TestApi): void {
  t.auth.addTeam({ name: 'web', createdAt: 0, createdBy: 'admin' });
  t.addService('shop', 'prod', 'web');
  t.addService('shop', 'test', 'web');
  t.auth.setAppTeam('shop', 'web');
}

test('fuzz: every route, arbitrary params, query and body: no 5xx, no stack trace, a refusal changes nothing', () => withTestApi(async (t) => {
  seed(t);
  const routes = Object.keys(ROUTE_PERMISSIONS).filter((r) => !STREAMING(r)).sort();
  assert.ok(routes.length > 80, `${routes.length} routes`);
  const snapshots = snapshotReader(t.dir);
  try {
    await fuzzRoutes(t, routes, snapshots);
  } finally {
    snapshots.close();
  }
}));

async function fuzzRoutes(t: TestApi, routes: string[], snapshots: ReturnType<typeof snapshotReader>): Promise<void> {
  // The reader sees what the shared helper sees.
  assert.deepEqual(snapshots.read(), databaseSnapshot(t.dir));
  // The databases as the last refusal left them (compared equal to those before it), or undefined
  // after an answer that may have changed them: then the next case reads them afresh.
  let unchanged: Snapshot | undefined;
  let cases = 0;
  for (const route of routes) {
    const [method, path] = route.split(' ') as ['GET' | 'POST' | 'PUT' | 'DELETE', string];
    let failure = '';
    await fc.assert(fc.asyncProperty(fc.array(word, { minLength: 1, maxLength: 3 }), query, body, async (params, q, b) => {
      cases++;
      try {
        await one(params, q, b);
      } catch (e) {
        failure = (e as Error).message;
        throw e;
      }
    }), { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) }).catch((e: Error) => {
      throw new Error(`${route}: ${failure}\n${e.message.slice(0, 2000)}`);
    });
    async function one(params: string[], q: Record<string, string>, b: unknown): Promise<void> {
      const before = unchanged ?? snapshots.read();
      unchanged = undefined;
      const url = urlOf(path, params, q);
      const res = await t.api.inject({
        method, url, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        ...(method === 'GET' || method === 'DELETE' ? {} : { payload: JSON.stringify(b) }),
      });
      const where = `${method} ${url.slice(0, 200)} ${method === 'GET' || method === 'DELETE' ? '' : JSON.stringify(b).slice(0, 300)}`;
      // The portal's files answer 503 on a server where the portal was not built (server state, not input).
      // (A path of `..` resolves to the portal too: `GET /git/..` is `GET /`.)
      const portal503 = method === 'GET' && res.statusCode === 503 && /portal is not built/.test(res.body);
      assert.ok(res.statusCode < 500 || portal503, `${res.statusCode} ${res.body.slice(0, 500)} ← ${where}`);
      assert.doesNotMatch(res.body, /\n\s+at .+:\d+:\d+|node_modules|\/work\/|Error: .*\n/, `${where}: a stack trace or a server path in the answer`);
      if (res.statusCode >= 400 && !portal503) {
        const e = (res.json() as { error?: { code?: string; message?: string } }).error;
        assert.ok(e?.code && e.message, `${where}: an error body: ${res.body.slice(0, 300)}`);
        const after = snapshots.read();
        if (JSON.stringify(after) !== JSON.stringify(before)) assert.fail(`${res.statusCode} ${res.body.slice(0, 300)} changed the databases: ${changedTables(before, after)} ← ${where}`);
        unchanged = after;
      }
    }
  }
  // Still what the shared helper reads, after the accepted requests' writes.
  assert.deepEqual(snapshots.read(), databaseSnapshot(t.dir));
  // For the record (`npm run fuzz` prints it): cases run.
  process.stdout.write(`# api fuzz: ${cases} cases over ${routes.length} routes\n`);
}
