import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appRemains, type RemainsSources } from './app-remains.ts';

const sources = (over: Partial<RemainsSources> = {}): RemainsSources => ({
  store: {
    listReleases: () => [
      { env: 'prod', spec: { volumes: [{ type: 'volume', source: 'data' }, { type: 'bind', source: '/srv' }] } },
      { env: 'prod', spec: { volumes: [{ type: 'volume', source: 'data' }] } },
      { env: 'pre', spec: { volumes: [{ type: 'volume', source: 'cache' }] } },
    ] as never,
    appRecordCounts: () => ({ releases: 3, deployments: 2, events: 7 }),
  },
  config: { appInventory: () => [{ env: 'prod', values: 1, secrets: 1, versions: 2 }] },
  builds: { list: () => [{}, {}] },
  git: { inventory: () => ({ repository: true, source: false }) },
  logs: { appSourceCount: () => 4 },
  metrics: { appSeriesCount: () => 9 },
  volumeName: (app, env, name) => `${app}_${env}_${name}`,
  ...over,
});

test('remains: every part answers; named volumes once each, bind mounts are not volumes', async () => {
  const r = await appRemains(sources({ images: { appImageCount: async () => 5 } }), 'shop');
  assert.deepEqual(r, {
    app: 'shop', config: [{ env: 'prod', values: 1, secrets: 1, versions: 2 }], releases: 3, deployments: 2, events: 7, builds: 2,
    repository: true, webhookSource: false, volumes: ['shop_pre_cache', 'shop_prod_data'], logSources: 4, metricSeries: 9, images: 5,
  });
});

test('remains: no image registry is 0 images; a registry that cannot be asked is unknown, not a failure', async () => {
  assert.equal((await appRemains(sources(), 'shop')).images, 0);
  const r = await appRemains(sources({ images: { appImageCount: async () => { throw new Error('registry down'); } } }), 'shop');
  assert.equal(r.images, undefined);
  assert.equal(r.releases, 3);
});
