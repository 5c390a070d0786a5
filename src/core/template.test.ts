import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseServiceName, parseTemplate, renderTemplate, templateInputs } from './template.ts';

const data = {
  service: (n: string) => (n === 'web.shop.prod'
    ? [{ ID: 'a1', Address: '127.0.0.1', Port: 20001, Service: 'web', App: 'shop', Env: 'prod' }, { ID: 'b2', Address: '127.0.0.1', Port: 20002, Service: 'web', App: 'shop', Env: 'prod' }]
    : n === 'db.prod' ? [{ ID: 'x1', Address: '127.0.0.4', Port: 5432, Service: 'db', App: '', Env: 'prod' }] : []),
  key: (p: string) => (p === 'shop/prod/GREETING' ? 'hello' : undefined),
};

test('range, fields, key and count render', () => {
  const t = parseTemplate('upstream web {\n{{range service "web.shop.prod"}}  server {{.Address}}:{{.Port}}; # {{.ID}} {{.App}}\n{{end}}}\n# {{key "shop/prod/GREETING"}} {{service_count "web.shop.prod"}}{{/* note */}}\n');
  assert.equal(renderTemplate(t, data),
    'upstream web {\n  server 127.0.0.1:20001; # a1 shop\n  server 127.0.0.1:20002; # b2 shop\n}\n# hello 2\n');
  assert.deepEqual(templateInputs(t), { services: ['web.shop.prod'], keys: ['shop/prod/GREETING'] });
});

test('a two-part name is an external service of the environment', () => {
  const t = parseTemplate('{{range service "db.prod"}}{{.Service}}@{{.Env}} {{.Address}}:{{.Port}}{{end}} {{service_count "db.prod"}}');
  assert.equal(renderTemplate(t, data), 'db@prod 127.0.0.4:5432 1');
});

test('an empty service renders nothing inside range', () => {
  assert.equal(renderTemplate(parseTemplate('[{{range service "api.shop.prod"}}x{{end}}]'), data), '[]');
});

test('service names: SERVICE.APP.ENV for an app\'s service, SERVICE.ENV for an external one', () => {
  assert.deepEqual(parseServiceName('web.shop.prod'), { service: 'web', app: 'shop', env: 'prod' });
  assert.deepEqual(parseServiceName('db.prod'), { service: 'db', env: 'prod' });
});

test('errors name line and column and what is right', () => {
  assert.throws(() => parseTemplate('a\n  {{range service "web.shop.prod"}}x', 't.tmpl'), /t\.tmpl:2:3: "\{\{range \.\.\.\}\}" is never closed/);
  assert.throws(() => parseTemplate('{{.Port}}', 't'), /t:1:1: "\{\{\.Port\}\}" is only valid inside \{\{range service "SERVICE\.APP\.ENV"\}\}/);
  assert.throws(() => parseTemplate('{{range service "web.shop.prod"}}{{.Prot}}{{end}}', 't'), /unknown field \.Prot: use one of/);
  assert.throws(() => parseTemplate('x {{end}}', 't'), /t:1:3: "\{\{end\}\}" without/);
  assert.throws(() => parseTemplate('{{ services }}', 't'), /cannot understand/);
  assert.throws(() => parseTemplate('{{ .ID', 't'), /never closed: add "\}\}"/);
  assert.throws(() => parseTemplate('{{range service "web.shop.prod.x"}}{{end}}', 't'), /t:1:1: cannot understand .*SERVICE\.APP\.ENV; SERVICE\.ENV for an external service/);
  assert.throws(() => parseTemplate('{{service_count "web"}}', 't'), /cannot understand/);
});
