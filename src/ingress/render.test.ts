import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IngressRoute } from '../core/ports.ts';
import { InvalidInput } from '../core/errors.ts';
import { checkRoutes, onlyBackendsDiffer, parseGeneration, planConfig, renderBackends, renderNginxConfig, routeAtLine, type RenderOptions } from './render.ts';

const opts: RenderOptions = {
  prefix: '/data/nginx',
  listenPort: 8080,
  listenAddress: '0.0.0.0',
  adminPort: 8099,
  generation: 3,
  stubStatus: true,
  workerUser: 'nobody nogroup',
};
const { generation: _g, ...planOpts } = opts;

const web: IngressRoute = {
  upstream: 'shop-prod-web',
  path: '/',
  backends: [
    { address: '127.0.0.1', port: 30002, instance: 'i-b' },
    { address: '127.0.0.1', port: 30001, instance: 'i-a' },
  ],
};
const api: IngressRoute = { upstream: 'shop-prod-api', host: 'api.example.com', path: '/v1', backends: [{ address: '10.0.0.5', port: 30010, instance: 'i-c' }] };
const empty: IngressRoute = { upstream: 'shop-prod-worker', path: '/jobs', backends: [] };

/** The lines between `start` and the next line at the same indentation that closes it. */
function block(conf: string, start: string): string {
  const lines = conf.split('\n');
  const i = lines.findIndex((l) => l.trim() === start);
  assert.ok(i >= 0, `no line ${start}`);
  const indent = lines[i]!.length - lines[i]!.trimStart().length;
  const j = lines.findIndex((l, k) => k > i && l === `${' '.repeat(indent)}}`);
  return lines.slice(i, j + 1).join('\n');
}

function serverFor(conf: string, name: string): string {
  const blocks = conf.split('\n    server {\n').slice(1);
  const b = blocks.find((s) => s.includes(`server_name ${name};`));
  assert.ok(b, `no server for ${name}`);
  return b.slice(0, b.indexOf('\n    }\n'));
}

test('output is the same for any input order', () => {
  const a = renderNginxConfig([web, api, empty], opts);
  const shuffled = [empty, { ...api }, { ...web, backends: [...web.backends].reverse() }];
  assert.equal(renderNginxConfig(shuffled, opts), a);
  assert.equal(renderNginxConfig([api, empty, web], opts), a);
});

test('an upstream per route with sorted, de-duplicated servers and keepalive', () => {
  const dup = { ...web, backends: [...web.backends, { address: '127.0.0.1', port: 30001, instance: 'i-a' }] };
  const conf = renderNginxConfig([dup], opts);
  assert.equal(
    block(conf, 'upstream shop-prod-web {'),
    [
      '    upstream shop-prod-web {',
      '        server 127.0.0.1:30001 max_fails=1 fail_timeout=1s; # i-a',
      '        server 127.0.0.1:30002 max_fails=1 fail_timeout=1s; # i-b',
      '        keepalive 32;',
      '        keepalive_timeout 4s;',
      '    }',
    ].join('\n'),
  );
});

test('a route without backends answers 503 and declares no upstream', () => {
  const conf = renderNginxConfig([empty], opts);
  assert.doesNotMatch(conf, /upstream shop-prod-worker/);
  assert.match(block(conf, 'location = /jobs {'), /return 503 "no healthy instance for shop-prod-worker\\n";/);
  assert.match(block(conf, 'location /jobs/ {'), /return 503 "no healthy instance for shop-prod-worker\\n";/);
});

test('no routes at all: the default server answers 404 "no route"', () => {
  const conf = renderNginxConfig([], opts);
  const def = serverFor(conf, '_');
  assert.match(def, /listen 0\.0\.0\.0:8080 default_server;/);
  assert.match(def, /location \/ \{\n\s+default_type text\/plain;\n\s+return 404 "no route\\n";/);
  assert.doesNotMatch(conf, /^\s*upstream /m);
});

test('hosts get their own server; host-less routes are served for every host, the host route winning', () => {
  const apiRoot: IngressRoute = { upstream: 'shop-prod-site', host: 'API.example.com.', path: '/', backends: [{ address: '127.0.0.1', port: 30020, instance: 'i-d' }] };
  const conf = renderNginxConfig([web, api, apiRoot, empty], opts);
  const def = serverFor(conf, '_');
  assert.match(def, /location \/ \{\n\s+proxy_pass http:\/\/shop-prod-web;/);
  assert.doesNotMatch(def, /v1/);
  const host = serverFor(conf, 'api.example.com');
  assert.match(host, /listen 0\.0\.0\.0:8080;/);
  assert.doesNotMatch(host, /default_server/);
  assert.deepEqual(
    [...host.matchAll(/location (= )?(\S+) \{\n\s+(.*)/g)].map((m) => [`${m[1] ?? ''}${m[2]}`, m[3]]),
    [
      ['/', 'proxy_pass http://shop-prod-site;'],
      ['= /jobs', 'default_type text/plain;'],
      ['/jobs/', 'default_type text/plain;'],
      ['= /v1', 'proxy_pass http://shop-prod-api;'],
      ['/v1/', 'proxy_pass http://shop-prod-api;'],
    ],
  );
  assert.equal(conf.split('server_name api.example.com;').length, 2, 'one server block per host');
});

test('retries, keepalive and forwarding headers are configured for every proxied location', () => {
  const conf = renderNginxConfig([web], opts);
  const http = block(conf, 'http {');
  for (const line of [
    'proxy_http_version 1.1;',
    'proxy_set_header Connection $berth_connection;',
    'proxy_set_header Host $host;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
    'proxy_set_header X-Real-IP $remote_addr;',
    'proxy_next_upstream error timeout http_502 http_503;',
    'proxy_next_upstream_tries 3;',
    'proxy_connect_timeout 1s;',
  ]) {
    assert.ok(http.includes(`\n    ${line}\n`), `missing ${line}`);
  }
  // A non-idempotent request that reached a backend is never sent twice (it may have taken effect).
  assert.doesNotMatch(http, /non_idempotent/);
  // A location-level proxy_set_header would silently drop all the inherited ones.
  assert.doesNotMatch(block(conf, 'location / {'), /proxy_set_header/);
});

test('everything nginx writes stays under the prefix', () => {
  const conf = renderNginxConfig([web], { ...opts, prefix: '/data/nginx/' });
  for (const line of conf.split('\n').filter((l) => /(pid|_log|_temp_path) /.test(l) && !l.includes('log_format') && !l.includes('access_log off'))) {
    assert.match(line, / \/data\/nginx\/(logs|tmp)\/[a-z_.]+( berth_json| warn)?;$/, line);
  }
  assert.match(conf, /^daemon on;$/m);
  assert.match(conf, /^worker_shutdown_timeout 30s;$/m);
  assert.match(conf, /^user nobody nogroup;$/m);
  assert.doesNotMatch(renderNginxConfig([web], { ...opts, workerUser: undefined }), /^user /m);
});

test('admin server: loopback, generation, stub_status only when available', () => {
  const conf = renderNginxConfig([web], opts);
  const admin = conf.slice(conf.indexOf('listen 127.0.0.1:8099 reuseport;'));
  assert.match(admin, /location = \/berth\/generation \{ return 200 "3"; \}/);
  assert.match(admin, /location = \/berth\/status \{ stub_status; \}/);
  assert.doesNotMatch(renderNginxConfig([web], { ...opts, stubStatus: false }), /stub_status/);
  assert.equal(parseGeneration(conf), 3);
  assert.equal(parseGeneration('events {}'), undefined);
});

test('IPv6 listen address and backends are bracketed', () => {
  const conf = renderNginxConfig([{ upstream: 'v6', path: '/', backends: [{ address: '::1', port: 3000, instance: 'x' }] }], { ...opts, listenAddress: '::' });
  assert.match(conf, /listen \[::\]:8080 default_server;/);
  assert.match(conf, /server \[::1\]:3000 max_fails/);
});

test('planConfig keeps the generation (and bytes) for the same routes and bumps it on change', () => {
  const first = planConfig(undefined, [web, api], planOpts);
  assert.deepEqual([first.generation, first.changed], [1, true]);
  const again = planConfig(first.config, [api, web], planOpts);
  assert.deepEqual([again.generation, again.changed, again.config === first.config], [1, false, true]);
  const changed = planConfig(first.config, [web], planOpts);
  assert.deepEqual([changed.generation, changed.changed], [2, true]);
  assert.equal(parseGeneration(changed.config), 2);
  const back = planConfig(changed.config, [web, api], planOpts);
  assert.deepEqual([back.generation, back.changed], [3, true], 'going back to an earlier table is still a new generation');
  assert.equal(planConfig('# hand-written\n', [], planOpts).generation, 1);
});

const bad: { name: string; route: IngressRoute; message: RegExp }[] = [
  { name: 'host with a space', route: { upstream: 'a', host: 'evil host', path: '/', backends: [] }, message: /host/ },
  { name: 'host with a brace', route: { upstream: 'a', host: 'x.com;}', path: '/', backends: [] }, message: /host/ },
  { name: 'empty host', route: { upstream: 'a', host: '', path: '/', backends: [] }, message: /host/ },
  { name: 'path without slash', route: { upstream: 'a', path: 'api', backends: [] }, message: /path/ },
  { name: 'path with a semicolon', route: { upstream: 'a', path: '/a;b', backends: [] }, message: /path/ },
  { name: 'path with a variable', route: { upstream: 'a', path: '/$host', backends: [] }, message: /path/ },
  { name: 'path with a quote', route: { upstream: 'a', path: "/a'b", backends: [] }, message: /path/ },
  { name: 'path with a brace', route: { upstream: 'a', path: '/a{b}', backends: [] }, message: /path/ },
  { name: 'path with a dot-dot segment', route: { upstream: 'a', path: '/a/../b', backends: [] }, message: /path/ },
  { name: 'host with two dots in a row', route: { upstream: 'a', host: 'a..b', path: '/', backends: [] }, message: /host/ },
  { name: 'upstream with a slash', route: { upstream: 'a/b', path: '/', backends: [] }, message: /upstream name/ },
  { name: 'port out of range', route: { upstream: 'a', path: '/', backends: [{ address: '127.0.0.1', port: 70000, instance: 'i' }] }, message: /port/ },
  { name: 'address with a space', route: { upstream: 'a', path: '/', backends: [{ address: '127.0.0.1 down', port: 80, instance: 'i' }] }, message: /address/ },
];

for (const c of bad) {
  test(`rejects ${c.name}`, () => {
    const r = checkRoutes([c.route, web]);
    assert.equal(r.problems.length, 1);
    assert.match(r.problems[0]!.message, c.message);
    assert.deepEqual(
      r.routes.map((x) => x.upstream),
      ['shop-prod-web'],
      'the good route survives',
    );
    assert.throws(() => renderNginxConfig([c.route], opts), InvalidInput);
  });
}

test('a path prefix matches on segment boundaries: exactly the path, and below it', () => {
  const conf = renderNginxConfig([{ ...web, path: '/ux-path' }], opts);
  const def = serverFor(conf, '_');
  assert.match(def, /location = \/ux-path \{\n\s+proxy_pass http:\/\/shop-prod-web;/);
  assert.match(def, /location \/ux-path\/ \{\n\s+proxy_pass http:\/\/shop-prod-web;/);
  assert.doesNotMatch(def, /location \/ux-path \{/, 'no bare prefix location: it would match /ux-pathology');
  assert.match(def, /location \/ \{\n\s+default_type text\/plain;\n\s+return 404 "no route\\n";/);
  // A trailing slash is the same route, not a second location nginx would refuse as a duplicate.
  assert.equal(renderNginxConfig([{ ...web, path: '/ux-path/' }], opts), conf);
  const r = checkRoutes([{ ...web, path: '/ux-path' }, { ...api, host: undefined, upstream: 'other', path: '/ux-path/' }]);
  assert.equal(r.routes.length, 1);
  assert.match(r.problems[0]!.message, /path \/ux-path is already routed/);
});

test('hosts are canonical (case, trailing dot, IDNA): two spellings of one host are one location', () => {
  const first: IngressRoute = { ...web, upstream: 'owner.prod.web.0', host: 'sec-case.local', owner: { app: 'owner', env: 'prod', service: 'web' } };
  const second: IngressRoute = { ...web, upstream: 'hijack.prod.web.0', host: 'SEC-CASE.LOCAL.', backends: [], owner: { app: 'hijack', env: 'prod', service: 'web' } };
  const r = checkRoutes([second, first]);
  assert.deepEqual(r.routes.map((x) => [x.upstream, x.host]), [['hijack.prod.web.0', 'sec-case.local']], 'without claims, the upstream name decides');
  const claimed = checkRoutes([{ ...second, claimedAt: 2000 }, { ...first, claimedAt: 1000 }]);
  assert.deepEqual(claimed.routes.map((x) => x.upstream), ['owner.prod.web.0'], 'the first claim keeps the route');
  assert.deepEqual(claimed.problems.map((p) => [p.owner?.app, p.host]), [['hijack', 'sec-case.local']]);
  assert.match(claimed.problems[0]!.message, /already routed to owner\/prod\/web, which claimed it first/);
  assert.deepEqual(checkRoutes([{ ...first, claimedAt: 1000 }, { ...second, claimedAt: 2000 }]), claimed, 'any input order, same result');
  const idn = renderNginxConfig([{ ...web, host: 'Bücher.Example.' }], opts);
  assert.match(idn, /server_name xn--bcher-kva\.example;/);
});

test('a second route for the same host and path is rejected, deterministically', () => {
  const other: IngressRoute = { ...web, upstream: 'shop-prod-other' };
  for (const order of [
    [web, other],
    [other, web],
  ]) {
    const r = checkRoutes(order);
    assert.deepEqual(
      r.routes.map((x) => x.upstream),
      ['shop-prod-other'],
    );
    assert.match(r.problems[0]!.message, /already routed to upstream shop-prod-other/);
  }
});

test('one upstream on two hosts is fine with the same backends, rejected with different ones', () => {
  const onHost = { ...web, host: 'shop.example.com' };
  assert.equal(checkRoutes([web, onHost]).problems.length, 0);
  const conf = renderNginxConfig([web, onHost], opts);
  assert.equal(conf.split('upstream shop-prod-web {').length, 2, 'declared once');
  const drifted = { ...onHost, backends: [web.backends[0]!] };
  assert.match(checkRoutes([web, drifted]).problems[0]!.message, /different backends/);
});

test('instance ids cannot break out of their comment', () => {
  const conf = renderNginxConfig([{ upstream: 'a', path: '/', backends: [{ address: '127.0.0.1', port: 1, instance: 'x\n}\nevil;' }] }], opts);
  assert.match(conf, /# x\?}\?evil;\n/);
});

test('public servers write the berth_json access log with the route name; the admin server logs nothing', () => {
  const conf = renderNginxConfig([web, empty], opts);
  assert.match(conf, /^ {4}log_format berth_json escape=json '\{"time":\$msec,.*"route":"\$berth_route".*"request_time":\$request_time,.*"bytes_sent":\$bytes_sent\}';$/m);
  assert.match(conf, /^ {4}access_log \/data\/nginx\/logs\/access\.json\.log berth_json;$/m);
  assert.match(serverFor(conf, '_'), /^ {8}set \$berth_route "";$/m);
  assert.match(block(conf, 'location / {'), /set \$berth_route shop-prod-web;/);
  // For a route without backends the name must be set before `return` ends the rewrite phase.
  assert.match(block(conf, 'location = /jobs {'), /set \$berth_route shop-prod-worker;\n\s+return 503/);
  const admin = conf.slice(conf.indexOf('listen 127.0.0.1:8099 reuseport;'));
  assert.match(admin, /access_log off;/);
  // The format with sample values substituted is one valid JSON object.
  const fmt = /log_format berth_json escape=json '(.*)';/.exec(conf)![1]!;
  const line = fmt.replace('$msec', '1700000000.123').replace('$status', '200').replace('$request_time', '0.004')
    .replace('$bytes_sent', '512').replace(/\$[a-z_]+/g, 'x');
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed), ['time', 'host', 'route', 'upstream', 'method', 'path', 'status', 'request_time', 'upstream_response_time', 'upstream_addr', 'bytes_sent']);
});

test('only-backends changes are told apart from every other change (those get nginx -t)', () => {
  const at = (routes: IngressRoute[], generation: number) => renderNginxConfig(routes, { ...opts, generation });
  const base = at([web, api, empty], 3);
  const moved = { ...web, backends: [{ address: '127.0.0.1', port: 30003, instance: 'i-d' }] };
  const more = { ...web, backends: [...web.backends, { address: '127.0.0.1', port: 30003, instance: 'i-d' }] };
  const v6 = { ...api, backends: [{ address: '::1', port: 30011, instance: 'i-e' }] };
  // Backends joining, leaving or moving (and the generation going up): same shape.
  assert.equal(onlyBackendsDiffer(base, at([moved, api, empty], 4)), true);
  assert.equal(onlyBackendsDiffer(base, at([more, api, empty], 4)), true);
  assert.equal(onlyBackendsDiffer(base, at([web, v6, empty], 4)), true);
  // Identical bytes are not a change at all.
  assert.equal(onlyBackendsDiffer(base, base), false);
  // An upstream losing its last backend or gaining its first changes the locations: tested.
  assert.equal(onlyBackendsDiffer(base, at([{ ...web, backends: [] }, api, empty], 4)), false);
  assert.equal(onlyBackendsDiffer(base, at([web, api, { ...empty, backends: [{ address: '127.0.0.1', port: 30020, instance: 'i-f' }] }], 4)), false);
  // New routes, hosts or paths: tested.
  assert.equal(onlyBackendsDiffer(base, at([web, api, empty, { ...web, upstream: 'shop-prod-web2', path: '/two' }], 4)), false);
  assert.equal(onlyBackendsDiffer(base, at([web, { ...api, host: 'api2.example.com' }, empty], 4)), false);
  // A server line Berth would never write (a name to resolve, an impossible address or port): tested.
  for (const bad of ['backend.example.com:80', '300.1.1.1:80', '127.0.0.1:70000', '[zz::1]:80']) {
    const edited = base.replace(/server 127\.0\.0\.1:30001 /, `server ${bad} `);
    assert.notEqual(edited, base);
    assert.equal(onlyBackendsDiffer(base, edited), false, bad);
  }
  // Anything else edited by hand: tested.
  assert.equal(onlyBackendsDiffer(base, base.replace('keepalive 32;', 'keepalive 64;')), false);
});

test('routeAtLine names the route whose lines nginx -t refused, and nobody for Berth\'s own lines', () => {
  const conf = renderNginxConfig([web, api, empty], opts);
  const lines = conf.split('\n');
  const at = (pred: (l: string) => boolean) => {
    const i = lines.findIndex(pred);
    assert.ok(i >= 0, 'the line is in the config');
    return routeAtLine(conf, i + 1);
  };
  assert.deepEqual(at((l) => l.includes('server 127.0.0.1:30001')), { upstream: 'shop-prod-web' });
  assert.deepEqual(at((l) => l === '    upstream shop-prod-api {'), { upstream: 'shop-prod-api' });
  assert.deepEqual(at((l) => l.includes('proxy_pass http://shop-prod-api;')), { upstream: 'shop-prod-api' });
  assert.deepEqual(at((l) => l === '        location = /jobs {'), { upstream: 'shop-prod-worker' });
  assert.deepEqual(at((l) => l.includes('return 503 "no healthy instance for shop-prod-worker')), { upstream: 'shop-prod-worker' });
  assert.deepEqual(at((l) => l === '        server_name api.example.com;'), { host: 'api.example.com' });
  for (const own of ['proxy_http_version 1.1;', 'server_name _;', 'location / { return 404 "not found\\n"; }', 'access_log off;', 'worker_shutdown_timeout 30s;']) {
    assert.equal(at((l) => l.trim() === own), undefined, own);
  }
  const noRoot = renderNginxConfig([api], opts);
  const i = noRoot.split('\n').findIndex((l) => l.trim() === 'return 404 "no route\\n";');
  assert.ok(i > 0);
  assert.equal(routeAtLine(noRoot, i + 1), undefined, 'the default 404 location is Berth\'s');
  assert.equal(routeAtLine(conf, 0), undefined);
  assert.equal(routeAtLine(conf, lines.length + 5), undefined);
});

test('HTTPS: a host with a certificate gets a TLS server, its routes redirect with 308, HSTS only where asked and only over TLS', () => {
  const tls = { certFile: '/run/berth/c/tls/shop.example.com.ab12.crt', keyFile: '/run/berth/c/tls/shop.example.com.ab12.key' };
  const shop: IngressRoute = { upstream: 'shop.prod.web.0', host: 'shop.example.com', path: '/', backends: web.backends, tls, https: { wantsCert: true, redirect: true, hstsSeconds: 600 } };
  const plain: IngressRoute = { upstream: 'shop.prod.web.1', host: 'shop.example.com', path: '/feed', backends: web.backends, tls, https: { wantsCert: true, redirect: false } };
  const conf = renderNginxConfig([shop, plain, api], { ...opts, httpsPort: 8443, acmeChallengeDir: '/data/nginx/acme' });
  const servers = conf.split('\n    server {\n').slice(1).filter((b) => b.includes('server_name shop.example.com;'));
  assert.equal(servers.length, 2, 'an HTTP and an HTTPS server for the host');
  const [http, https] = [servers.find((b) => b.includes('listen 0.0.0.0:8080;'))!, servers.find((b) => b.includes('listen 0.0.0.0:8443 ssl http2;'))!];
  assert.ok(http && https);
  // HTTP: the challenge first, then the redirect for `/`, and `/feed` still proxied (redirect: false).
  assert.match(http, /location \^~ \/\.well-known\/acme-challenge\/ \{\n\s+default_type text\/plain;\n\s+alias \/data\/nginx\/acme\/;/);
  assert.ok(http.indexOf('acme-challenge') < http.indexOf('location / {'));
  assert.match(block(http, 'location / {'), /return 308 https:\/\/\$host:8443\$request_uri;/);
  assert.doesNotMatch(http, /Strict-Transport-Security/, 'no HSTS over plain HTTP');
  assert.match(block(http, 'location = /feed {'), /proxy_pass http:\/\/shop\.prod\.web\.1;/);
  // HTTPS: the certificate, proxying, HSTS on `/` only.
  assert.match(https, /ssl_certificate \/run\/berth\/c\/tls\/shop\.example\.com\.ab12\.crt;\n\s+ssl_certificate_key \/run\/berth\/c\/tls\/shop\.example\.com\.ab12\.key;/);
  assert.doesNotMatch(https, /acme-challenge|return 308/);
  assert.match(block(https, 'location / {'), /proxy_pass http:\/\/shop\.prod\.web\.0;[\s\S]*add_header Strict-Transport-Security "max-age=600" always;/);
  assert.doesNotMatch(block(https, 'location = /feed {'), /Strict-Transport-Security/);
  // Unknown names are refused at the handshake; the host without a certificate has no TLS server.
  assert.match(conf, /listen 0\.0\.0\.0:8443 ssl http2 default_server;\n\s+server_name _;\n\s+ssl_reject_handshake on;/);
  assert.equal(conf.split('\n').filter((l) => l.includes('server_name api.example.com;')).length, 1);
  assert.match(conf, /ssl_protocols TLSv1\.2 TLSv1\.3;/);
  // On port 443 the redirect names no port.
  assert.match(renderNginxConfig([shop], { ...opts, httpsPort: 443 }), /return 308 https:\/\/\$host\$request_uri;/);
});

test('HTTPS: without a certificate nothing listens for TLS and nothing redirects; the challenge location is still there', () => {
  const wants: IngressRoute = { upstream: 'shop.prod.web.0', host: 'shop.example.com', path: '/', backends: web.backends, https: { wantsCert: true, redirect: true, hstsSeconds: 600 } };
  const conf = renderNginxConfig([wants, web], { ...opts, httpsPort: 8443, acmeChallengeDir: '/data/nginx/acme' });
  assert.doesNotMatch(conf, /ssl|return 308|Strict-Transport/);
  // Every HTTP server answers challenges: the default one (hosts without routes) and each host's.
  assert.equal(conf.split('\n').filter((l) => l.includes('location ^~ /.well-known/acme-challenge/ {')).length, 2);
  // Without the options the config is what it was before HTTPS existed.
  assert.doesNotMatch(renderNginxConfig([wants, web], opts), /acme-challenge/);
});

test('HTTPS: certificate paths that would break nginx syntax, or a certificate without a host, are refused', () => {
  const bad: IngressRoute = { upstream: 'a.b.c.0', host: 'a.example.com', path: '/', backends: [], tls: { certFile: '/x/a b.crt', keyFile: '/x/a.key' } };
  const noHost: IngressRoute = { upstream: 'a.b.c.1', path: '/', backends: [], tls: { certFile: '/x/a.crt', keyFile: '/x/a.key' } };
  const hsts: IngressRoute = { upstream: 'a.b.c.2', host: 'b.example.com', path: '/', backends: [], https: { wantsCert: true, redirect: true, hstsSeconds: -1 } };
  const r = checkRoutes([bad, noHost, hsts]);
  assert.equal(r.routes.length, 0);
  assert.deepEqual(r.problems.map((p) => p.message), [
    'certificate file paths must be absolute paths of letters, digits and ._/+@=,-',
    'a certificate needs a host',
    'hsts max-age -1 must be a whole number of seconds from 1 to 2^31',
  ]);
});

const lua = { moduleDir: '/usr/lib/nginx/modules/', backendsFile: '/data/nginx/conf/backends.conf', verifierFile: '/data/nginx/admin/token.sha1' };
const luaOpts: RenderOptions = { ...opts, lua };
const { generation: _lg, ...luaPlanOpts } = luaOpts;
const named: IngressRoute = { upstream: 'shop-prod-named', path: '/named', backends: [{ address: 'db.internal', port: 30030, instance: 'i-n' }] };

test('with Lua: modules loaded, the backends dict filled from the backends file, IP upstreams balanced by Lua without server lines', () => {
  const conf = renderNginxConfig([web, api, empty, named], luaOpts);
  assert.match(conf, /^load_module \/usr\/lib\/nginx\/modules\/ndk_http_module\.so;\nload_module \/usr\/lib\/nginx\/modules\/ngx_http_lua_module\.so;$/m);
  assert.ok(conf.indexOf('load_module') < conf.indexOf('events {'), 'load_module in the main context, before events');
  assert.match(conf, /lua_shared_dict berth_backends 32m;/);
  assert.match(block(conf, 'init_by_lua_block {'), /local FILE = "\/data\/nginx\/conf\/backends\.conf"/);
  assert.match(block(conf, 'init_by_lua_block {'), /io\.open\("\/data\/nginx\/admin\/token\.sha1", "r"\)/);
  assert.equal(block(conf, 'upstream shop-prod-web {'), [
    '    upstream shop-prod-web {',
    '        server 0.0.0.1:1; # unused: backends come from the backends file / admin endpoint',
    '        balancer_by_lua_block { berth.balance("shop-prod-web") }',
    '        keepalive 32;',
    '        keepalive_timeout 4s;',
    '    }',
  ].join('\n'), 'keepalive after the balancer (it wraps the balancer\'s peer selection)');
  assert.doesNotMatch(conf, /30001|30002|30010/, 'no IP backend in the config');
  // A route with no backends is an upstream too: its first backend arrives without a reload.
  assert.match(block(conf, 'upstream shop-prod-worker {'), /berth\.balance\("shop-prod-worker"\)/);
  assert.match(block(conf, 'location = /jobs {'), /access_by_lua_block \{ berth\.admit\("shop-prod-worker"\) \}\n {12}proxy_pass http:\/\/shop-prod-worker;/);
  // Host names cannot be given to balancer.set_current_peer: that upstream keeps its server lines.
  assert.match(block(conf, 'upstream shop-prod-named {'), /server db\.internal:30030 max_fails=1 fail_timeout=1s; # i-n/);
  assert.doesNotMatch(block(conf, 'location = /named {'), /by_lua/);
  // The admin location that takes backend sets is on the loopback admin server, behind the token check in Lua.
  const admin = conf.slice(conf.indexOf('listen 127.0.0.1:8099 reuseport;'));
  assert.match(admin, /location = \/berth\/backends \{\n {12}client_max_body_size 16m;\n {12}client_body_buffer_size 16m;\n {12}content_by_lua_block \{ berth\.admin\(\) \}/);
  assert.doesNotMatch(renderNginxConfig([web], opts), /lua|load_module/, 'without Lua: nothing of it');
  // routeAtLine still finds a route's own lines (for nginx -t refusals).
  const lines = conf.split('\n');
  assert.deepEqual(routeAtLine(conf, lines.indexOf('        balancer_by_lua_block { berth.balance("shop-prod-web") }') + 1), { upstream: 'shop-prod-web' });
  assert.deepEqual(routeAtLine(conf, lines.indexOf('            access_by_lua_block { berth.admit("shop-prod-worker") }') + 1), { upstream: 'shop-prod-worker' });
});

test('with Lua: the backends file lists every Lua upstream sorted, the same bytes for any order; a backend change leaves the config and generation alone', () => {
  const text = renderBackends([named, empty, web, api], luaOpts)!;
  assert.equal(text, [
    '# berth-backends v1: rendered by Berth, read by nginx (init_by_lua) at start and reload. Do not edit.',
    'shop-prod-api 10.0.0.5 30010',
    'shop-prod-web 127.0.0.1 30001,127.0.0.1 30002',
    'shop-prod-worker',
    '',
  ].join('\n'));
  assert.equal(renderBackends([api, { ...web, backends: [...web.backends].reverse() }, empty, named], luaOpts), text);
  assert.equal(renderBackends([web], opts), undefined, 'no file without Lua');
  const v6 = renderBackends([{ upstream: 'v6', path: '/', backends: [{ address: '::1', port: 3000, instance: 'x' }] }], luaOpts)!;
  assert.match(v6, /^v6 ::1 3000$/m, 'IPv6 unbracketed: the Lua side splits on the space');

  const first = planConfig(undefined, [web, empty], luaPlanOpts);
  const scaled = planConfig(first.config, [{ ...web, backends: [...web.backends, { address: '127.0.0.1', port: 30003, instance: 'i-x' }] }, { ...empty, backends: [web.backends[0]!] }], luaPlanOpts);
  assert.deepEqual([scaled.changed, scaled.generation, scaled.config === first.config], [false, first.generation, true], 'a backend change is not a config change');
  assert.notEqual(scaled.backends, first.backends);
  assert.match(scaled.backends!, /^shop-prod-worker 127\.0\.0\.1 30002$/m);
  const routed = planConfig(first.config, [web, empty, api], luaPlanOpts);
  assert.deepEqual([routed.changed, routed.generation], [true, first.generation + 1], 'a new route is a config change');
  // Routes checkRoutes refuses are in neither file.
  const bad = { ...web, upstream: 'bad name' };
  assert.doesNotMatch(renderBackends([bad], luaOpts)!, /bad/);
});

test('planConfig: a changed table\'s config is byte for byte what renderNginxConfig renders at the next generation (the generation is swapped in, not re-rendered)', () => {
  const more = { ...web, backends: [...web.backends, { address: '127.0.0.1', port: 30009, instance: 'i-y' }] };
  const tables: IngressRoute[][] = [[web], [web, api], [api], [], [{ ...web, backends: [] }], [web, { ...api, host: 'generation.example.com' }],
    // A backend joins (with Lua: the same config), a named backend (not Lua-balanced), and back to an address.
    [more], [web], [named, web], [{ ...named, backends: [{ address: '10.1.1.1', port: 1, instance: 'z' }] }, web], [named, web]];
  let current: string | undefined;
  let changes = 0;
  for (const opts of [planOpts, { ...planOpts, stubStatus: false }, luaPlanOpts, planOpts]) {
    for (const routes of tables) {
      const plan = planConfig(current, routes, opts);
      assert.equal(plan.config, renderNginxConfig(routes, { ...opts, generation: plan.generation }));
      if (plan.changed) changes++;
      assert.equal(plan.changed, plan.config !== current);
      current = plan.config;
    }
  }
  assert.equal(parseGeneration(current!), changes);
  assert.ok(changes < 4 * tables.length, 'with Lua, a backend joining or leaving is no config change');
});

test('frozen backends arrays (the route table\'s) are checked once and give what a fresh copy gives; arrays that can change are checked every time', () => {
  const lua = { moduleDir: '/usr/lib/nginx/modules', backendsFile: '/data/nginx/conf/backends.conf', verifierFile: '/data/nginx/admin/token.sha1' };
  const frozen = (bs: { address: string; port: number; instance: string }[]) => Object.freeze(bs.map((b) => Object.freeze({ ...b })));
  const a = frozen([{ address: '127.0.0.1', port: 9002, instance: 'i2' }, { address: '127.0.0.1', port: 9001, instance: 'i1' }, { address: '127.0.0.1', port: 9001, instance: 'dup' }]);
  const routes: IngressRoute[] = [{ upstream: 'a.prod.web.0', host: 'a.local', path: '/', backends: a as IngressRoute['backends'] }];
  const copy: IngressRoute[] = [{ upstream: 'a.prod.web.0', host: 'a.local', path: '/', backends: a.map((b) => ({ ...b })) }];
  const first = checkRoutes(routes);
  assert.deepEqual(first, checkRoutes(copy));
  assert.deepEqual(first.routes[0]!.backends.map((b) => b.port), [9001, 9002], 'sorted, de-duplicated');
  assert.deepEqual(checkRoutes(routes), first, 'the same answer the second time');
  assert.deepEqual(checkRoutes(first.routes).routes, first.routes, 'checked routes check as themselves');
  assert.equal(planConfig(undefined, routes, { ...planOpts, lua }).backends, planConfig(undefined, copy, { ...planOpts, lua }).backends);
  assert.throws(() => ((first.routes[0]!.backends as unknown as unknown[]).push({})), TypeError, 'what is remembered cannot be changed by a caller');

  // A frozen array with a bad backend: refused every time.
  const bad = frozen([{ address: 'bad host;', port: 1, instance: 'x' }]);
  for (let i = 0; i < 2; i++) assert.equal(checkRoutes([{ upstream: 'b.prod.web.0', path: '/b', backends: bad as IngressRoute['backends'] }]).problems.length, 1);

  // An array that can change: a change made in place between two checks is seen.
  const mutable = [{ address: '127.0.0.1', port: 9001, instance: 'i1' }];
  const r: IngressRoute[] = [{ upstream: 'c.prod.web.0', path: '/c', backends: mutable }];
  assert.deepEqual(checkRoutes(r).routes[0]!.backends.map((b) => b.port), [9001]);
  mutable.push({ address: '127.0.0.1', port: 9000, instance: 'i0' });
  assert.deepEqual(checkRoutes(r).routes[0]!.backends.map((b) => b.port), [9000, 9001]);
  mutable[0]!.address = 'bad host;';
  assert.equal(checkRoutes(r).problems.length, 1);
});
