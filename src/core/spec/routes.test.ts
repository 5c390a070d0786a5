import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalRouteKey, normaliseHost, normaliseRoutePath, parseUpstreamName, upstreamName, type RouteCheck } from './routes.ts';

const value = (r: RouteCheck): string => {
  assert.ok(r.ok, r.ok ? '' : r.message);
  return r.value;
};
const refusal = (r: RouteCheck): string => {
  assert.ok(!r.ok, `accepted as ${r.ok ? r.value : ''}`);
  return r.message;
};

test('hosts: one canonical form per name (case, one trailing dot, IDNA, full-width forms)', () => {
  const cases: [string, string][] = [
    ['sec-case.local', 'sec-case.local'],
    ['SEC-CASE.LOCAL.', 'sec-case.local'],
    ['Sec-Case.Local', 'sec-case.local'],
    ['ｓｅｃ-case.local', 'sec-case.local'],
    ['sec-case。local', 'sec-case.local'],
    ['Bücher.Example.', 'xn--bcher-kva.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['*.Apps.Example.COM', '*.apps.example.com'],
    ['127.0.0.1', '127.0.0.1'],
    ['localhost', 'localhost'],
  ];
  for (const [raw, want] of cases) assert.equal(value(normaliseHost(raw)), want, raw);
});

test('hosts: refused with what is wrong and what would be right', () => {
  const cases: [string, RegExp][] = [
    ['', /it is empty/],
    ['.', /it has no name/],
    ['evil host', /" " cannot be part of a host name/],
    ['x.local;', /";" cannot be part of a host name/],
    ['x.local}', /"}" cannot be part of a host name/],
    ['x.local:8080', /":" cannot be part of a host name/],
    ['user@x.local', /"@" cannot be part of a host name/],
    ['a..b', /empty label/],
    ['x.local..', /empty label/],
    ['-x.local', /the label "-x" must be/],
    ['a_b.local', /the label "a_b" must be/],
    [`${'a'.repeat(64)}.local`, /must be 1-63/],
    [Array.from({ length: 60 }, () => 'abcd').join('.'), /at most 253/],
    ['x.*.local', /"\*" cannot be part/],
    ['123', /IP address written in an unusual form/],
    ['0x7f.0.0.1', /IP address written in an unusual form/],
  ];
  for (const [raw, want] of cases) {
    const m = refusal(normaliseHost(raw));
    assert.match(m, want, raw);
    assert.match(m, /e\.g\. shop\.example\.com/, 'says what would be right');
  }
});

test('paths: canonical without a trailing slash; refused when nginx would read them as syntax or they could never match', () => {
  for (const [raw, want] of [['/', '/'], ['/api', '/api'], ['/api/', '/api'], ['/a-b._~!&()*+,=:@/c', '/a-b._~!&()*+,=:@/c'], ['/Caps/V1', '/Caps/V1']] as const) {
    assert.equal(value(normaliseRoutePath(raw)), want, raw);
  }
  const cases: [unknown, RegExp][] = [
    ['api', /must start with "\/"/],
    [42, /not a string/],
    ['/a;b', /";" is not allowed .*nginx would read it/],
    ["/a'b", /"'" is not allowed/],
    ['/a"b', /"\\"" is not allowed/],
    ['/a$b', /"\$" is not allowed/],
    ['/a{b}', /"\{" is not allowed/],
    ['/a\\b', /is not allowed/],
    ['/a#b', /"#" is not allowed/],
    ['/a?b', /"\?" is not allowed/],
    ['/a b', /blank/],
    ['/a\tb', /blank/],
    ['/a%20b', /"%" escapes/],
    ['/é', /"é" is not allowed/],
    ['/a//b', /empty segment/],
    ['//', /empty segment/],
    ['/a/../b', /"\." and "\.\." segments/],
    ['/..', /"\." and "\.\." segments/],
    ['/a/./', /"\." and "\.\." segments/],
    [`/${'a'.repeat(1024)}`, /at most 1024/],
  ];
  for (const [raw, want] of cases) {
    const m = refusal(normaliseRoutePath(raw));
    assert.match(m, want, String(raw));
    assert.match(m, /e\.g\. \/api\/v1/, 'says what would be right');
  }
});

test('route keys compare canonical forms, also of routes stored before normalisation', () => {
  assert.equal(canonicalRouteKey({ host: 'SEC-CASE.LOCAL.', path: '/api/' }), canonicalRouteKey({ host: 'sec-case.local', path: '/api' }));
  assert.notEqual(canonicalRouteKey({ path: '/api' }), canonicalRouteKey({ host: 'x.local', path: '/api' }));
  assert.notEqual(canonicalRouteKey({ path: '/api' }), canonicalRouteKey({ path: '/apix' }));
  // Unparseable stored routes keep their own spelling (the ingress refuses them anyway).
  assert.equal(canonicalRouteKey({ path: '/a;b' }), '* /a;b');
});

test('upstream names cannot collide when names contain dashes, and split back', () => {
  const one = upstreamName({ app: 'a', env: 'b-c', service: 'web' }, 0);
  const two = upstreamName({ app: 'a-b', env: 'c', service: 'web' }, 0);
  assert.notEqual(one, two);
  assert.deepEqual(parseUpstreamName(one), { app: 'a', env: 'b-c', service: 'web' });
  assert.deepEqual(parseUpstreamName(two), { app: 'a-b', env: 'c', service: 'web' });
  assert.deepEqual(parseUpstreamName(upstreamName({ app: 'x', env: 'prod', service: 'api-gw' }, 12)), { app: 'x', env: 'prod', service: 'api-gw' });
  assert.equal(parseUpstreamName('a-b-c-web-0'), undefined);
});
