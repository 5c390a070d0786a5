// The rooms rule (scripts/eslint-rooms.mjs, table in eslint.config.js) through ESLint's Node API:
// crossed imports are errors, allowed ones pass, and every listed exception is still needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const eslint = new ESLint({ cwd: ROOT });

async function roomErrors(filePath: string, code: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath: path.join(ROOT, filePath) });
  assert.ok(res, 'one result');
  const fatal = res.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], 'the snippet parses');
  return res.messages.filter((m) => m.ruleId === 'berth/rooms').map((m) => m.message);
}

const use = 'void x;\n';

test('a crossed room is an error that names both rooms and what is allowed', async () => {
  const errs = await roomErrors('src/api/x.ts', `import { x } from '../engine/docker/index.ts';\n${use}`);
  assert.equal(errs.length, 1);
  assert.match(errs[0]!, /^api\/ may not import src\/engine\/docker\/index\.ts: api\/ may import core, auth, logs \(types\)/);
  assert.match(errs[0]!, /docs\/DESIGN\.md/);
});

test('allowed imports pass', async () => {
  assert.deepEqual(await roomErrors('src/api/x.ts', `import { x } from '../core/errors.ts';\nimport { y } from './known.ts';\nimport { z } from 'zod';\n${use}void y; void z;\n`), []);
  assert.deepEqual(await roomErrors('src/deploy/sub/x.ts', `import { x } from '../../lib/backoff.ts';\n${use}`), []);
  assert.deepEqual(await roomErrors('src/server/x.ts', `import { x } from '../engine/docker/index.ts';\nimport Docker from 'dockerode';\n${use}void Docker;\n`), []);
  assert.deepEqual(await roomErrors('src/lib/x.ts', `import { x } from '../core/errors.ts';\nimport type { Logger } from '../core/ports.ts';\n${use}export type L = Logger;\n`), []);
});

test('adapters do not import each other, also from a subfolder', async () => {
  assert.equal((await roomErrors('src/deploy/x.ts', `import { x } from '../store/index.ts';\n${use}`)).length, 1);
  assert.equal((await roomErrors('src/ingress/sub/x.ts', `import { x } from '../../registry/index.ts';\n${use}`)).length, 1);
  assert.equal((await roomErrors('src/engine/fake/x.ts', `import { x } from '../docker/index.ts';\n${use}`)).length, 1);
});

test('type-only allowances take only type imports', async () => {
  assert.deepEqual(await roomErrors('src/api/x.ts', `import type { LogPage } from '../logs/index.ts';\nexport type P = LogPage;\n`), []);
  assert.deepEqual(await roomErrors('src/api/x.ts', `import { type LogPage } from '../logs/index.ts';\nexport type P = LogPage;\n`), []);
  assert.equal((await roomErrors('src/api/x.ts', `import { LogStore } from '../logs/index.ts';\nvoid LogStore;\n`)).length, 1);
  assert.equal((await roomErrors('src/lib/x.ts', `import { x } from '../core/ports.ts';\n${use}`)).length, 1);
  assert.equal((await roomErrors('src/lib/x.ts', `import type { x } from '../core/store.ts';\nexport type X = x;\n`)).length, 1);
});

test('re-exports, dynamic imports and import() types are checked too', async () => {
  assert.equal((await roomErrors('src/cli/x.ts', `export { x } from '../server/index.ts';\n`)).length, 1);
  assert.equal((await roomErrors('src/cli/x.ts', `export async function f() { return import('../server/index.ts'); }\n`)).length, 1);
  assert.equal((await roomErrors('src/client/x.ts', `export type X = import('../store/index.ts').SqliteStore;\n`)).length, 1);
});

test('core is pure and takes only its schema libraries; technology packages stay in their room', async () => {
  assert.match((await roomErrors('src/core/x.ts', `import { readFileSync } from 'node:fs';\nvoid readFileSync;\n`))[0] ?? '', /core\/ may not import Node's "node:fs"/);
  assert.equal((await roomErrors('src/core/spec/x.ts', `import path from 'path';\nvoid path;\n`)).length, 1);
  assert.match((await roomErrors('src/core/x.ts', `import Docker from 'dockerode';\nvoid Docker;\n`))[0] ?? '', /package "dockerode"/);
  assert.equal((await roomErrors('src/core/x.ts', `import { x } from '../lib/ids.ts';\n${use}`)).length, 1);
  assert.deepEqual(await roomErrors('src/core/x.ts', `import YAML from 'yaml';\nimport { z } from 'zod';\nvoid YAML; void z;\n`), []);
  assert.match((await roomErrors('src/api/x.ts', `import Docker from 'dockerode';\nvoid Docker;\n`))[0] ?? '', /only engine\/docker\/, server\/ may import "dockerode"/);
  assert.equal((await roomErrors('src/deploy/x.ts', `import Database from 'better-sqlite3';\nvoid Database;\n`)).length, 1);
});

test('tests and files outside src/ are not checked; a room missing from the table is', async () => {
  assert.deepEqual(await roomErrors('src/deploy/x.test.ts', `import { x } from '../engine/fake/index.ts';\n${use}`), []);
  assert.deepEqual(await roomErrors('test/x.ts', `import { x } from '../src/engine/docker/index.ts';\n${use}`), []);
  assert.match((await roomErrors('src/newroom/x.ts', `import { x } from '../core/errors.ts';\n${use}`))[0] ?? '', /src\/newroom\/ is not in the rooms table/);
});

test('an exception covers only its own file', async () => {
  const startServer = `export async function f() { return import('../../server/index.ts'); }\n`;
  assert.deepEqual(await roomErrors('src/cli/commands/server.ts', startServer), []);
  assert.equal((await roomErrors('src/cli/commands/apps.ts', startServer)).length, 1);
  assert.equal((await roomErrors('src/cli/commands/server.ts', `import { x } from '../../deploy/service-reconciler.ts';\n${use}`)).length, 1);
  // The API gets builds, git, webhooks, config and metrics as injected roles now (core/builds.ts,
  // core/metrics.ts, core/ports.ts ConfigEntriesPort): importing their rooms from the routes is a crossing again.
  assert.equal((await roomErrors('src/api/metrics-routes.ts', `import { MetricsStore } from '../metrics/index.ts';\nvoid MetricsStore;\n`)).length, 1);
  assert.equal((await roomErrors('src/api/git-routes.ts', `import { serveGitHttp } from '../build/git-http.ts';\nvoid serveGitHttp;\n`)).length, 1);
  assert.equal((await roomErrors('src/api/webhook-routes.ts', `import { verifyWebhook } from '../build/index.ts';\nvoid verifyWebhook;\n`)).length, 1);
  assert.equal((await roomErrors('src/api/config-routes.ts', `import type { ConfigStore } from '../config/index.ts';\nexport type C = ConfigStore;\n`)).length, 1);
  // The API's rollback is an injected port now: importing deploy/ from the service routes is a crossing again.
  assert.equal((await roomErrors('src/api/service-routes.ts', `import { rollbackTo } from '../deploy/rollback.ts';\nvoid rollbackTo;\n`)).length, 1);
});

test('every listed exception is still needed by the code', async () => {
  const cfg = await eslint.calculateConfigForFile(path.join(ROOT, 'src/api/app.ts')) as { rules: Record<string, [number, { exceptions: { file: string; to: string; why: string }[] }]> };
  const [, opts] = cfg.rules['berth/rooms']!;
  assert.ok(opts.exceptions.length > 0);
  const strict = new ESLint({
    cwd: ROOT,
    overrideConfig: { files: ['src/**/*.ts'], rules: { 'berth/rooms': ['error', { ...opts, exceptions: [] }] } },
  });
  const files = [...new Set(opts.exceptions.map((e) => e.file))];
  for (const f of files) assert.ok(existsSync(path.join(ROOT, f)), `${f} exists`);
  const results = await strict.lintFiles(files.map((f) => path.join(ROOT, f)));
  for (const e of opts.exceptions) {
    assert.ok(e.why.length > 10, `${e.file} → ${e.to} says why`);
    const res = results.find((r) => path.relative(ROOT, r.filePath) === e.file);
    const hit = res?.messages.some((m) => m.ruleId === 'berth/rooms' && m.message.includes(` import src/${e.to}`));
    assert.ok(hit, `exception ${e.file} → ${e.to} is no longer needed: remove it from eslint.config.js`);
  }
});

async function errorsOf(rule: string, filePath: string, code: string): Promise<number> {
  const [res] = await eslint.lintText(code, { filePath: path.join(ROOT, filePath) });
  return res!.messages.filter((m) => m.ruleId === rule).length;
}

test('label names come from LABEL; only server/config.ts (and the CLI) read process.env', async () => {
  const labels = `export const l = { 'io.berth.app': 'a' };\nexport const f = (id: string) => \`label=io.berth.build=\${id}\`;\n`;
  assert.equal(await errorsOf('no-restricted-syntax', 'src/deploy/x.ts', labels), 2);
  assert.equal(await errorsOf('no-restricted-syntax', 'src/core/ports.ts', labels), 0);
  assert.equal(await errorsOf('no-restricted-syntax', 'src/deploy/x.test.ts', labels), 0);
  const env = 'export const v = process.env.BERTH_X;\n';
  assert.equal(await errorsOf('no-restricted-properties', 'src/build/x.ts', env), 1);
  assert.equal(await errorsOf('no-restricted-properties', 'src/server/server.ts', env), 1);
  assert.equal(await errorsOf('no-restricted-properties', 'src/server/config.ts', env), 0);
  assert.equal(await errorsOf('no-restricted-properties', 'src/cli/context.ts', env), 0);
});
