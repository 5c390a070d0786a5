import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NotFound } from '../core/errors.ts';
import { KnownApps, listedSource, type AppEnv, knownApps } from './known.ts';

function known(store: AppEnv[], config: AppEnv[] = [], services: Record<string, string[]> = {}) {
  let configReads = 0;
  const k = new KnownApps({
    sources: [listedSource(() => store), listedSource(() => {
      configReads++;
      return config;
    })],
    services: (app, env) => services[`${app}/${env ?? '*'}`] ?? [],
  });
  return { k, configReads: () => configReads };
}

const notFound = (fn: () => void, message: RegExp) => assert.throws(fn, (err: unknown) => err instanceof NotFound && message.test(err.message));

test('a known app passes; the first source that knows it is enough', () => {
  const { k, configReads } = known([{ app: 'shop', env: 'prod' }], [{ app: 'api', env: 'prod' }]);
  k.requireApp('shop');
  k.requireEnv('shop', 'prod');
  assert.equal(configReads(), 0);
  k.requireApp('api');
  assert.equal(configReads(), 1);
});

test('an unknown app is NotFound with a did-you-mean, or the apps there are, or a hint when there are none', () => {
  const { k } = known([{ app: 'shop', env: 'prod' }, { app: 'api', env: 'prod' }], [{ app: 'billing', env: 'staging' }]);
  notFound(() => k.requireApp('shpo'), /^no app "shpo": did you mean "shop"\?$/);
  notFound(() => k.requireApp('billign'), /did you mean "billing"/);
  notFound(() => k.requireApp('zzzzzzz'), /^no app "zzzzzzz": apps are api, billing, shop$/);
  notFound(() => known([]).k.requireApp('shop'), /^no app "shop": no apps yet/);
});

test('environments: an app in another env only; configuration counts; app-wide records add no env', () => {
  const { k } = known([{ app: 'shop', env: 'prod' }, { app: 'shop', env: '' }], [{ app: 'shop', env: 'staging' }]);
  k.requireEnv('shop', 'staging');
  notFound(() => k.requireEnv('shop', 'prdo'), /^no environment "prdo" for app "shop": did you mean "prod"\?$/);
  notFound(() => k.requireEnv('shop', 'qa'), /^no environment "qa" for app "shop": its environments are prod, staging$/);
  notFound(() => k.requireEnv('shpo', 'prod'), /^no app "shpo"/);
  assert.deepEqual([...known([{ app: 'x', env: '' }]).k.envsOf('x')!], []);
  notFound(() => known([{ app: 'x', env: '' }]).k.requireEnv('x', 'prod'), /it has nothing in any environment yet/);
});

test('services: current ones and those with releases, per environment', () => {
  const { k } = known([{ app: 'shop', env: 'prod' }], [], { 'shop/prod': ['web', 'worker'], 'shop/*': ['web', 'worker', 'old'] });
  k.requireService('shop', 'prod', 'web');
  k.requireService('shop', undefined, 'old');
  notFound(() => k.requireService('shop', 'prod', 'wbe'), /^no service "wbe" in shop\/prod: did you mean "web"\?$/);
  notFound(() => k.requireService('shop', 'prod', 'old'), /^no service "old" in shop\/prod: its services are web, worker$/);
});

test('knownApps: the store first, then configuration, then listings; services from current services and releases', () => {
  const asked: string[] = [];
  const k = knownApps({
    store: {
      hasApp: (app) => (asked.push(`store:${app}`), app === 'shop'), appEnvs: () => [{ app: 'shop', env: 'prod' }],
      listServices: () => [{ name: 'web' }] as never, listReleases: () => [{ service: 'worker' }] as never,
    },
    config: { hasApp: (app) => (asked.push(`config:${app}`), app === 'conf-only'), appEnvs: () => [{ app: 'conf-only', env: 'pre' }] },
    listings: [() => (asked.push('git'), [{ app: 'pushed', env: '' }])],
  });
  k.requireApp('shop');
  assert.deepEqual(asked, ['store:shop'], 'a hit in the store asks nothing else');
  k.requireApp('conf-only');
  k.requireApp('pushed');
  k.requireService('shop', 'prod', 'worker');
  assert.throws(() => k.requireApp('shpo'), /did you mean "shop"/);
  assert.throws(() => k.requireService('shop', 'prod', 'wbe'), /did you mean "web"/);
});
