import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closestMatch, unknownName } from './suggest.ts';

test('closestMatch: typos within reach, different words not', () => {
  assert.equal(closestMatch('shpo', ['shop', 'api']), 'shop');
  assert.equal(closestMatch('prdo', ['prod', 'staging']), 'prod');
  assert.equal(closestMatch('xyz', ['shop', 'api']), undefined);
});

test('unknownName: did-you-mean, the list, the only one, a long list cut, the hint', () => {
  assert.equal(unknownName({ what: 'app', name: 'shpo', candidates: ['shop', 'api'] }), 'no app "shpo": did you mean "shop"?');
  assert.equal(unknownName({ what: 'app', name: 'zz', candidates: ['shop', 'api', 'shop'] }), 'no app "zz": apps are api, shop');
  assert.equal(unknownName({ what: 'app', name: 'zz', candidates: ['shop'] }), 'no app "zz": the only app is shop');
  assert.equal(unknownName({ what: 'service', name: 'zz', where: 'in shop/prod', candidates: ['web', 'db'], plural: 'its services' }),
    'no service "zz" in shop/prod: its services are db, web');
  assert.match(unknownName({ what: 'app', name: 'zz', candidates: Array.from({ length: 20 }, (_, i) => `app${i}`) }), /, … \(20\)$/);
  assert.equal(unknownName({ what: 'app', name: 'zz', candidates: [], hint: 'deploy one' }), 'no app "zz": deploy one');
});
