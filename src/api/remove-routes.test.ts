import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { SqliteAuditStore, SqliteAuthStore, SqliteStore } from '../store/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { Authenticator, hashToken } from '../auth/index.ts';
import type { AppRemains } from '../core/app-remains.ts';
import { buildApi } from './app.ts';
import { KnownApps } from './known.ts';
import { appOfWrite, registerRemoveRoutes } from './remove-routes.ts';
import { TOKEN, openSse, type TestApi } from '../../test/helpers/api-inject.ts';
import { STREAM_MESSAGES } from './responses.ts';

test('appOfWrite: the app a request writes to (or reads git from); reads and the purge request itself are not writes', () => {
  const cases: [string, string, string | undefined][] = [
    ['POST', '/v1/apps/shop/deployments', 'shop'],
    ['POST', '/v1/apps/shop/deployments?dry_run=true', 'shop'],
    ['PUT', '/v1/apps/shop/config', 'shop'],
    ['DELETE', '/v1/apps/shop/config?env=prod&keys=A', 'shop'],
    ['PUT', '/v1/apps/shop/source', 'shop'],
    ['POST', '/v1/apps/shop/scale', 'shop'],
    ['POST', '/v1/apps/shop/promote', 'shop'],
    ['GET', '/git/shop.git/info/refs?service=git-receive-pack', 'shop'],
    ['POST', '/git/shop.git/git-receive-pack', 'shop'],
    ['GET', '/git/shop.git/info/refs?service=git-upload-pack', 'shop'],
    ['POST', '/v1/hooks/github/shop', 'shop'],
    ['POST', '/v1/git/hooks/pre-receive?app=shop', 'shop'],
    ['DELETE', '/v1/apps/shop', undefined],
    ['DELETE', '/v1/apps/shop?purge=true', undefined],
    ['GET', '/v1/apps/shop', undefined],
    ['GET', '/v1/apps/shop/config', undefined],
    ['GET', '/v1/apps/shop/purge', undefined],
    ['POST', '/v1/images/gc', undefined],
    ['PUT', '/v1/templates/x', undefined],
  ];
  for (const [method, url, want] of cases) assert.equal(appOfWrite(method, url), want, `${method} ${url}`);
});

const emptyRemains = (app: string): AppRemains => ({
  app, config: [], releases: 0, deployments: 0, events: 0, builds: 0, repository: false, webhookSource: false, images: 0, volumes: [],
  logSources: 0, metricSeries: 0,
});

async function withApi(fn: (api: FastifyInstance, s: SqliteStore, calls: string[], building: { id: string; status: string }[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-rm-api-'));
  const s = new SqliteStore(join(dir, 'berth.db'), { now: () => 1000 });
  s.addToken(hashToken('t'), 'admin');
  const authStore = new SqliteAuthStore(join(dir, 'auth.db'));
  const calls: string[] = [];
  const building: { id: string; status: string }[] = [];
  const known = new KnownApps({
    sources: [{ has: (app, env) => s.hasApp(app, env), all: () => s.appEnvs() }], services: (app) => s.listServices({ app }).map((x) => x.name),
  });
  const api = buildApi({
    store: s, clock: { now: () => 1000 }, logger: silentLogger, newId: () => 'id1', version: 'test',
    deployments: { validate: async () => assert.fail('no deploys here'), create: async () => assert.fail('no deploys here'), follow: async () => assert.fail('no deploys here') },
    rollback: { target: () => assert.fail('no rollbacks here'), rollback: () => assert.fail('no rollbacks here') },
    enqueueService: (a, e, n) => calls.push(`svc ${a}/${e}/${n}`), ingressPort: 0, known,
    logs: { search: () => ({ lines: [] }), tail: () => () => undefined },
    auth: new Authenticator({ store: authStore, adminTokens: s, clock: { now: () => 1000 } }), authStore, audit: new SqliteAuditStore(':memory:'),
  });
  registerRemoveRoutes(api, {
    store: s, clock: { now: () => 1000 }, known, enqueueService: (a, e, n) => calls.push(`svc ${a}/${e}/${n}`),
    enqueuePurge: (a) => calls.push(`purge ${a}`), remains: async (a) => ({ ...emptyRemains(a), releases: s.appRecordCounts(a).releases }),
    unfinishedBuilds: () => building,
  });
  s.putService({ app: 'shop', env: 'prod', name: 'web', replicas: 1, releaseId: 'r1', failures: 0, nextStartAt: 0, updatedAt: 0 },
    { id: 'r1', app: 'shop', env: 'prod', service: 'web', seq: 1, spec: {} as never, specHash: 'h', image: 'i', imageId: 'sha256:x',
      status: 'healthy', message: '', createdAt: 1, createdBy: 'admin' });
  try {
    await fn(api, s, calls, building);
  } finally {
    if (api.server.listening) api.server.closeAllConnections();
    await api.close();
    s.close();
    authStore.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const req = (api: FastifyInstance, method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, payload?: unknown) =>
  api.inject({ method, url, headers: { authorization: 'Bearer t' }, ...(payload !== undefined ? { payload: payload as object } : {}) });

test('plain rm answers with what remains; again, with nothing running, it is a 200 that still says so', () => withApi(async (api, s, calls) => {
  const r = await req(api, 'DELETE', '/v1/apps/shop');
  assert.equal(r.statusCode, 202, r.body);
  assert.deepEqual(r.json().removed, ['prod/web']);
  assert.equal(r.json().remains.releases, 1);
  assert.deepEqual(calls, ['svc shop/prod/web']);
  const again = await req(api, 'DELETE', '/v1/apps/shop');
  assert.equal(again.statusCode, 200, again.body);
  assert.deepEqual(again.json().removed, []);
  assert.equal((await req(api, 'DELETE', '/v1/apps/nope')).statusCode, 404);
  assert.equal(s.getPurge('shop'), undefined);
}));

test('purge: refused while a deployment or build of the app runs (nothing changes); --env is invalid; then guarded and idempotent', () =>
  withApi(async (api, s, calls, building) => {
    const invalid = await req(api, 'DELETE', '/v1/apps/shop?purge=true&env=prod');
    assert.equal(invalid.statusCode, 400);
    assert.match(invalid.json().error.message, /whole app/);

    s.createDeployment({ id: 'd1', app: 'shop', env: 'prod', spec: { name: 'shop', services: {} }, warnings: [], status: 'rolling', message: '',
      createdAt: 1, createdBy: 'admin', releases: {} });
    const busy = await req(api, 'DELETE', '/v1/apps/shop?purge=true');
    assert.equal(busy.statusCode, 409);
    assert.match(busy.json().error.message, /deployment d1 of shop\/prod is rolling/);
    s.updateDeployment('d1', { status: 'succeeded' });
    building.push({ id: 'b1', status: 'running' });
    const building409 = await req(api, 'DELETE', '/v1/apps/shop?purge=true');
    assert.equal(building409.statusCode, 409);
    assert.match(building409.json().error.message, /build b1 of shop is running.*berth build cancel b1/);
    assert.equal(s.listServices({ app: 'shop' }).length, 1, 'a refused purge changes nothing');
    assert.equal(s.getPurge('shop'), undefined);
    building.length = 0;

    const ok = await req(api, 'DELETE', '/v1/apps/shop?purge=true');
    assert.equal(ok.statusCode, 202, ok.body);
    assert.equal(ok.json().purge.state, 'purging');
    assert.deepEqual(ok.json().removed, ['prod/web']);
    assert.deepEqual(calls, ['svc shop/prod/web', 'purge shop']);
    assert.deepEqual(s.listServices({ app: 'shop' }), []);
    assert.equal((await req(api, 'GET', '/v1/apps/shop/purge')).json().purge.state, 'purging');

    // While it runs nothing writes to the app; reads still work; asking again is the same purge.
    const deploy = await req(api, 'POST', '/v1/apps/shop/deployments', { env: 'prod', spec: { name: 'shop', services: {} } });
    assert.equal(deploy.statusCode, 409);
    assert.match(deploy.json().error.message, /being purged/);
    assert.equal((await req(api, 'POST', '/v1/apps/shop/scale', { env: 'prod', service: 'web', replicas: 2 })).statusCode, 409);
    assert.equal((await req(api, 'GET', '/v1/apps/shop/releases')).statusCode, 200);
    const unauth = await api.inject({ method: 'POST', url: '/v1/apps/shop/deployments', payload: {} });
    assert.equal(unauth.statusCode, 401, 'the token is checked first');
    const twice = await req(api, 'DELETE', '/v1/apps/shop?purge=true');
    assert.equal(twice.statusCode, 202);
    assert.equal(twice.json().purge.requestedAt, 1000);
    assert.deepEqual(calls.slice(-1), ['purge shop']);
    assert.equal((await req(api, 'GET', '/v1/apps/nope/purge')).statusCode, 404);

    // Following it: 401, 404, then its record on each change until it is done (woken by the store's writes).
    assert.equal((await api.inject({ method: 'GET', url: '/v1/apps/shop/purge/stream' })).statusCode, 401);
    assert.match((await req(api, 'GET', '/v1/apps/nope/purge/stream')).json().error.message, /no purge of "nope" was asked/);
    s.addToken(hashToken(TOKEN), 'the token openSse sends');
    const follow = await openSse({ api } as TestApi, '/v1/apps/shop/purge/stream');
    type P = { purge: { state: string; waiting?: string } };
    assert.equal(((await follow.next()).data as P).purge.state, 'purging');
    const cur = s.getPurge('shop')!;
    s.putPurge({ ...cur, waiting: '1 container still stopping' });
    assert.equal(((await follow.next()).data as P).purge.waiting, '1 container still stopping');
    s.putPurge({ ...cur, state: 'done', finishedAt: 2000, removed: { events: '3 event(s)' } });
    assert.equal(((await follow.next()).data as P).purge.state, 'done');
    await follow.ended;
    for (const m of follow.all) STREAM_MESSAGES['GET /v1/apps/:app/purge/stream']![m.event]!.parse(m.data);
  }));
