import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTemplate, renderTemplate, templateInputs } from './template.ts';

const data = {
  service: (n: string) => (n === 'web.prod'
    ? [{ ID: 'a1', Address: '127.0.0.1', Port: 20001, Service: 'web', Env: 'prod' }, { ID: 'b2', Address: '127.0.0.1', Port: 20002, Service: 'web', Env: 'prod' }]
    : []),
  key: (p: string) => (p === 'shop/prod/GREETING' ? 'hello' : undefined),
};

test('range, fields, key and count render', () => {
  const t = parseTemplate('upstream web {\n{{range service "web.prod"}}  server {{.Address}}:{{.Port}}; # {{.ID}}\n{{end}}}\n# {{key "shop/prod/GREETING"}} {{service_count "web.prod"}}{{/* note */}}\n');
  assert.equal(renderTemplate(t, data),
    'upstream web {\n  server 127.0.0.1:20001; # a1\n  server 127.0.0.1:20002; # b2\n}\n# hello 2\n');
  assert.deepEqual(templateInputs(t), { services: ['web.prod'], keys: ['shop/prod/GREETING'] });
});

test('an empty service renders nothing inside range', () => {
  assert.equal(renderTemplate(parseTemplate('[{{range service "api.prod"}}x{{end}}]'), data), '[]');
});

test('errors name line and column and what is right', () => {
  assert.throws(() => parseTemplate('a\n  {{range service "web.prod"}}x', 't.tmpl'), /t\.tmpl:2:3: "\{\{range \.\.\.\}\}" is never closed/);
  assert.throws(() => parseTemplate('{{.Port}}', 't'), /t:1:1: "\{\{\.Port\}\}" is only valid inside/);
  assert.throws(() => parseTemplate('{{range service "web.prod"}}{{.Prot}}{{end}}', 't'), /unknown field \.Prot: use one of/);
  assert.throws(() => parseTemplate('x {{end}}', 't'), /t:1:3: "\{\{end\}\}" without/);
  assert.throws(() => parseTemplate('{{ services }}', 't'), /cannot understand/);
  assert.throws(() => parseTemplate('{{ .ID', 't'), /never closed: add "\}\}"/);
});
