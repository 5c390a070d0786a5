/**
 * Property tests (fast-check) of the Compose parser: for random YAML-ish documents, random Compose
 * shapes (known keys, wild values) and mutations of the corpus's real files, `parseAppSpec` either
 * returns a spec or throws InvalidSpec whose every issue names a file, a line and a column inside
 * the text — never another exception (a TypeError is a crash a user would see as "internal error").
 * Bounded here (BERTH_FUZZ_RUNS, default 150 per property: seconds); `npm run fuzz` runs many more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { BerthError, InvalidSpec } from '../errors.ts';
import { parseAppSpec } from './index.ts';

const RUNS = Number(process.env.BERTH_FUZZ_RUNS ?? 150);
// The bounded run in the unit suite uses a fixed seed (a CI run is reproducible); `npm run fuzz` (BERTH_FUZZ_RUNS set) explores new seeds.
const SEED = process.env.BERTH_FUZZ_SEED !== undefined ? Number(process.env.BERTH_FUZZ_SEED) : process.env.BERTH_FUZZ_RUNS === undefined ? 20261201 : undefined;
const params = { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) };
const CORPUS = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/compose-corpus/valid');
const SAMPLES = readdirSync(CORPUS).filter((f) => f.endsWith('.yaml')).sort().map((f) => ({ file: f, text: readFileSync(join(CORPUS, f), 'utf8') }));

/** Parses, and asserts the one allowed way to fail. */
function parseChecked(text: string): void {
  try {
    parseAppSpec(text, {
      file: 'compose.yaml', baseDir: CORPUS, env: { NPM_TOKEN: 'x' }, environment: 'prod',
      readFile: (p) => (p.startsWith(CORPUS) && existsSync(p) ? readFileSync(p, 'utf8') : undefined),
    });
  } catch (e) {
    if (!(e instanceof BerthError)) throw new Error(`not a BerthError: ${(e as Error)?.stack ?? String(e)}\n--- input ---\n${text}`);
    if (e instanceof InvalidSpec) {
      const lines = text.split('\n').length + 1;
      assert.ok(e.issues.length > 0, 'an InvalidSpec lists its issues');
      for (const i of e.issues) {
        assert.ok(typeof i.file === 'string' && i.file.length > 0, `issue has a file: ${JSON.stringify(i)}`);
        assert.ok(Number.isInteger(i.line) && i.line >= 1 && (i.file !== 'compose.yaml' || i.line <= lines), `issue line in the text: ${JSON.stringify(i)}\n${text}`);
        assert.ok(Number.isInteger(i.col) && i.col >= 1, `issue has a column: ${JSON.stringify(i)}`);
        assert.ok(i.message.length > 0, 'issue has a message');
      }
    }
  }
}

const SERVICE_KEYS = [
  'image', 'build', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'healthcheck', 'deploy', 'labels', 'stop_signal', 'stop_grace_period',
  'volumes', 'depends_on', 'shm_size', 'restart', 'scale', 'x-berth', 'user', 'read_only', 'cap_add', 'cap_drop', 'security_opt', 'tmpfs', 'networks',
  'network_mode', 'expose', 'secrets', 'configs', 'init', 'working_dir', 'ulimits', 'sysctls', 'extra_hosts', 'pull_policy', 'profiles', 'privileged',
  'pid', 'ipc', 'uts', 'userns_mode', 'cgroup', 'devices', 'pids_limit', 'extends', 'container_name', 'mem_limit',
];
const TOP_KEYS = ['services', 'volumes', 'networks', 'secrets', 'configs', 'name', 'version', 'x-berth', 'include'];
const word = fc.oneof(fc.constantFrom('web', 'db', 'host', 'true', '0', '-1', '1g', '80:80', '/data', '${X}', '$${Y}', '${Z:?}', 'ALL', 'x:y:z', '', '~', '.'), fc.string({ maxLength: 12 }));
const scalar = fc.oneof(word, fc.integer({ min: -70000, max: 70000 }), fc.boolean(), fc.constant(null), fc.double());
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.oneof(word, fc.constantFrom(...SERVICE_KEYS)), tie('v'), { maxKeys: 4 })),
})).v;
const service = fc.dictionary(fc.constantFrom(...SERVICE_KEYS), value, { maxKeys: 6 });
const composeDoc = fc.record({
  services: fc.dictionary(fc.oneof(fc.constantFrom('web', 'db', 'api'), word), fc.oneof(service, value), { maxKeys: 3 }),
  extra: fc.dictionary(fc.constantFrom(...TOP_KEYS), value, { maxKeys: 3 }),
}).map(({ services, extra }) => ({ ...extra, services }));

test('fuzz: random Compose-shaped documents parse or fail with located InvalidSpec issues', () => {
  fc.assert(fc.property(composeDoc, (doc) => parseChecked(stringify(doc))), params);
});

test('fuzz: random text and YAML syntax fragments never crash the parser', () => {
  const fragment = fc.constantFrom('services:', '  web:', '    image: x', '- ', ': ', '<<: *a', '&a', '*a', '{', '}', '[', ']', '"', "'", '|', '>', '#', '---', '\t', '\n', '!!binary', '!tag', '? ', '%YAML 1.2');
  const text = fc.oneof(fc.string({ maxLength: 200 }), fc.array(fc.oneof(fragment, fc.string({ maxLength: 8 })), { maxLength: 40 }).map((xs) => xs.join('')));
  fc.assert(fc.property(text, (t) => parseChecked(t)), params);
});

test('fuzz: mutations of the corpus\'s real files parse or fail with located issues', () => {
  assert.ok(SAMPLES.length >= 10);
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 20 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom(':', '- ', '\n  ', '{', '[', '"', '${', '*', '&', '!!', '\t')) }),
    fc.record({ kind: fc.constant('dupline' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('swaplines' as const), at: fc.nat(), other: fc.nat() }),
    fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), with: scalar.map((s) => (s === null ? 'null' : String(s))) }),
  );
  const apply = (text: string, m: { kind: string; at: number; len?: number; text?: string; other?: number; with?: string }) => {
    const lines = text.split('\n');
    const i = m.at % Math.max(1, text.length);
    const li = m.at % lines.length;
    switch (m.kind) {
      case 'delete': return text.slice(0, i) + text.slice(i + (m.len ?? 1));
      case 'insert': return text.slice(0, i) + (m.text ?? '') + text.slice(i);
      case 'dupline': return [...lines.slice(0, li + 1), lines[li]!, ...lines.slice(li + 1)].join('\n');
      case 'swaplines': {
        const lj = (m.other ?? 0) % lines.length;
        const out = [...lines];
        [out[li], out[lj]] = [out[lj]!, out[li]!];
        return out.join('\n');
      }
      default: {
        // Replaces one value (after a `: `) of a line with a random scalar.
        const line = lines[li]!;
        const c = line.indexOf(': ');
        lines[li] = c < 0 ? line : `${line.slice(0, c + 2)}${m.with ?? ''}`;
        return lines.join('\n');
      }
    }
  };
  fc.assert(fc.property(fc.constantFrom(...SAMPLES), fc.array(mutation, { minLength: 1, maxLength: 4 }), (sample, ms) => {
    parseChecked(ms.reduce((t, m) => apply(t, m), sample.text));
  }), params);
});
