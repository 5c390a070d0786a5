import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IngressRoute } from '../core/ports.ts';
import { backendKeys, onlyAdds } from './nginx-ingress.ts';

const route = (upstream: string, path: string, ports: number[], host?: string): IngressRoute => ({
  upstream, path, ...(host ? { host } : {}), backends: ports.map((port) => ({ instance: `i${port}`, address: '127.0.0.1', port })),
});

test('a reload that only adds backends to routes the old workers already serve need not wait for them', () => {
  const prev = backendKeys([route('a.prod.web.0', '/', [1000])]);
  assert.equal(onlyAdds(prev, backendKeys([route('a.prod.web.0', '/', [1000, 1001])])), true);
});

test('a backend leaving, a new route (even with no backends yet) or a route back from zero backends waits for the old workers', () => {
  const prev = backendKeys([route('a.prod.web.0', '/', [1000]), route('b.prod.web.0', '/b', [])]);
  assert.equal(onlyAdds(prev, backendKeys([route('a.prod.web.0', '/', [1001]), route('b.prod.web.0', '/b', [])])), false, 'a backend left');
  assert.equal(onlyAdds(prev, backendKeys([route('a.prod.web.0', '/', [1000]), route('b.prod.web.0', '/b', []), route('c.prod.web.0', '/c', [])])), false, 'a new route: an old worker answers 404 for it');
  assert.equal(onlyAdds(prev, backendKeys([route('a.prod.web.0', '/', [1000]), route('b.prod.web.0', '/b', [2000])])), false, 'back from zero');
  assert.equal(onlyAdds(prev, backendKeys([route('a.prod.web.0', '/x', [1000]), route('b.prod.web.0', '/b', [])])), false, 'the same upstream on a new path');
  assert.equal(onlyAdds(prev, backendKeys([route('a.prod.web.0', '/', [1000], 'a.local'), route('b.prod.web.0', '/b', [])])), false, 'the same upstream on a new host');
});
