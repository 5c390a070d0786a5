import { test } from 'node:test';
import assert from 'node:assert/strict';
import { remainsEmpty, remainsRows, type AppRemains } from './app-remains.ts';

const none: AppRemains = {
  app: 'shop', config: [], releases: 0, deployments: 0, events: 0, builds: 0, repository: false, webhookSource: false, images: 0, volumes: [],
  logSources: 0, metricSeries: 0,
};

test('nothing left: empty, no rows', () => {
  assert.equal(remainsEmpty(none), true);
  assert.deepEqual(remainsRows(none), []);
});

test('every kind of remains is a row, counts in words, values never', () => {
  const r: AppRemains = {
    ...none, config: [{ env: 'prod', values: 2, secrets: 1, versions: 5 }, { env: 'pre', values: 0, secrets: 0, versions: 2 }],
    releases: 7, deployments: 3, events: 40, builds: 1, repository: true, webhookSource: true, images: 3, volumes: ['berth_shop_prod_data'],
    logSources: 4, metricSeries: 1,
  };
  assert.equal(remainsEmpty(r), false);
  assert.deepEqual(remainsRows(r), [
    ['config (prod)', '2 values, 1 secret; 5 versions of history'],
    ['config (pre)', 'no keys set; 2 versions of history'],
    ['builds', '1 build record with logs'],
    ['git', 'the repository, the webhook source and its secret'],
    ['images', "3 images in Berth's registry"],
    ['volumes', 'berth_shop_prod_data'],
    ['releases', '7 releases (the next deploy continues their numbering), 3 deployments'],
    ['logs', 'lines of 4 containers (kept until log retention)'],
    ['metrics', '1 series'],
    ['events', '40 events in the timeline'],
  ]);
  assert.deepEqual(remainsRows({ ...none, images: undefined }), [['images', "unknown: Berth's registry did not answer"]]);
  assert.equal(remainsEmpty({ ...none, images: undefined }), true);
});
