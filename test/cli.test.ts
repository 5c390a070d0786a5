/**
 * The CLI as a new user meets it, against one real server: unknown apps and services exit 3 with a
 * did-you-mean everywhere (and create nothing), `--json` is one document per command (`[]` when
 * empty, NDJSON only for streams, errors as JSON on stderr), the day-one commands (`apps`, `restart`
 * under load, `exec` with its exit code, `events -f --since`), and `scale` refusing replicas whose
 * memory limits the host cannot hold.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Harness, ROOT, underLoad } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const SHOP = join(ROOT, 'test/fixtures/apps/cli/compose.yaml');
const BERTH = join(ROOT, 'bin/berth');

describe('the CLI', () => {
  let h: Harness;
  before(async () => {
    // 512 MiB for instances' memory limits: web 2 × 128 MiB + worker 1 × 64 MiB = 320 MiB.
    h = await Harness.create({ portRange: '10600-10699', env: { BERTH_HOST_MEMORY_MB: '512' } });
    await h.startServer();
    const d = await h.cli(['deploy', '-f', SHOP], { timeoutMs: 180_000 });
    assert.equal(d.code, 0, d.stderr);
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-6000));
    await h.cleanup();
  });

  const json = async (args: string[]) => {
    const r = await h.cli(['--json', ...args]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    try {
      return JSON.parse(r.stdout) as unknown;
    } catch {
      assert.fail(`${args.join(' ')} --json is not one JSON document:\n${r.stdout}`);
    }
  };
  const replicas = async (service: string) =>
    ((await h.status('shop')).services as { name: string; desired: number }[]).find((s) => s.name === service)!.desired;

  test('unknown apps and services exit 3 with a did-you-mean, and nothing is created', async () => {
    const cases: [string[], RegExp][] = [
      [['events', 'shpo'], /no app "shpo": did you mean "shop"\?/],
      [['events', 'shop', '--service', 'wbe'], /no service "wbe" in shop: did you mean "web"\?/],
      [['releases', 'shpo'], /did you mean "shop"/],
      [['releases', 'shop', '--service', 'wokrer'], /did you mean "worker"/],
      [['config', 'ls', 'shpo'], /did you mean "shop"/],
      [['config', 'ls', 'shop', '--env', 'prdo'], /no environment "prdo" for app "shop": did you mean "prod"\?/],
      [['config', 'get', 'shpo', 'KEY'], /did you mean "shop"/],
      [['config', 'history', 'shpo'], /did you mean "shop"/],
      [['config', 'unset', 'shpo', 'KEY'], /did you mean "shop"/],
      [['secret', 'ls', 'shpo'], /did you mean "shop"/],
      [['top', 'shpo'], /did you mean "shop"/],
      [['builds', 'shpo'], /did you mean "shop"/],
      [['images', 'shpo'], /did you mean "shop"/],
      [['logs', 'shpo'], /did you mean "shop"/],
      [['logs', 'shop/wbe'], /no service "wbe" in shop\/prod: did you mean "web"\?/],
      [['status', 'shpo'], /did you mean "shop"/],
      [['scale', 'shpo', 'web=2'], /did you mean "shop"/],
      [['scale', 'shop', 'wbe=2'], /did you mean "web"/],
      [['rollback', 'shpo'], /did you mean "shop"/],
      [['reload', 'shop', 'wbe'], /did you mean "web"/],
      [['restart', 'shpo'], /did you mean "shop"/],
      [['restart', 'shop/wbe'], /did you mean "web"/],
      [['exec', 'shop/wbe', '--', 'true'], /did you mean "web"/],
      [['events', 'zzzzzzzz'], /no app "zzzzzzzz": the only app is shop/],
    ];
    for (const [args, expect] of cases) {
      const r = await h.cli(args);
      assert.equal(r.code, 3, `${args.join(' ')} → exit ${r.code}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, expect, args.join(' '));
      assert.equal(r.stdout, '', `${args.join(' ')} prints no result`);
    }
    for (const path of ['/v1/events?app=shpo', '/v1/top?app=shpo', '/v1/metrics/query?kind=http&app=shpo', '/v1/events/stream?app=shpo',
      '/v1/apps/shop/logs?service=wbe']) {
      const r = await h.api('GET', path);
      assert.equal(r.status, 404, path);
      assert.match(r.json.error.message, /did you mean/, path);
    }

    // config set on a mistyped app or environment stores nothing...
    const set = await h.cli(['config', 'set', 'shpo', 'GREETING=hi']);
    assert.equal(set.code, 3, set.stderr);
    assert.match(set.stderr, /did you mean "shop"\?.*nothing was stored.*--create/);
    assert.equal((await h.cli(['config', 'set', 'shop', 'GREETING=hi', '--env', 'prdo'])).code, 3);
    assert.equal((await h.cli(['config', 'ls', 'shpo'])).code, 3, 'still no app "shpo"');
    assert.equal((await h.api('GET', '/v1/apps/shop/config?env=prdo')).status, 404, 'still no env "prdo"');
    // ...unless asked to: configuration before the first deploy is a real use case.
    const created = await h.cli(['config', 'set', 'newapp', 'GREETING=hi', '--create']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /newapp\/prod is not deployed/);
    assert.deepEqual((await json(['config', 'ls', 'newapp']) as { key: string }[]).map((e) => e.key), ['GREETING']);
  });

  test('--json: one document per command, [] for empty lists, errors as JSON on stderr', async () => {
    const lists: [string[], (v: unknown[]) => void][] = [
      [['apps'], (v) => assert.ok(v.length >= 1)],
      [['events', 'shop'], (v) => assert.ok(v.length > 0)],
      [['releases', 'shop'], (v) => assert.equal(v.length, 2)],
      [['config', 'ls', 'shop'], (v) => assert.deepEqual(v, [])],
      [['config', 'history', 'shop'], (v) => assert.deepEqual(v, [])],
      [['secret', 'ls', 'shop'], (v) => assert.deepEqual(v, [])],
      // shop's deploys built their images as build records (one build path); an app without builds lists none.
      [['builds', 'newapp'], (v) => assert.deepEqual(v, [])],
      [['builds', 'shop'], (v) => assert.ok(v.length > 0 && v.every((b) => (b as { source: string }).source === 'deploy'))],
      [['logs', 'shop/worker'], (v) => assert.deepEqual(v, [])],
      [['alert', 'ls'], (v) => assert.deepEqual(v, [])],
      [['template', 'ls'], (v) => assert.deepEqual(v, [])],
      [['scale', 'shop', 'worker=1'], (v) => assert.deepEqual(v, [{ service: 'worker', from: 1, to: 1 }])],
    ];
    for (const [args, check] of lists) {
      const v = await json(args);
      assert.ok(Array.isArray(v), `${args.join(' ')} --json is an array`);
      check(v as unknown[]);
    }
    const st = await json(['status', 'shop']) as { services: unknown[] };
    assert.equal(st.services.length, 2);
    const logs = await json(['logs', 'shop/web', '--grep', 'listening']) as { service: string }[];
    assert.ok(logs.length >= 1 && logs.every((l) => l.service === 'web'));

    const notFound = await h.cli(['--json', 'events', 'shpo']);
    assert.equal(notFound.code, 3);
    assert.equal(notFound.stdout, '');
    const err = JSON.parse(notFound.stderr) as { error: { code: string; message: string } };
    assert.equal(err.error.code, 'not_found');
    assert.match(err.error.message, /did you mean "shop"/);
    const usage = await h.cli(['scale', '--json']);
    assert.equal(usage.code, 2);
    assert.equal((JSON.parse(usage.stderr) as { error: { code: string } }).error.code, 'invalid_input');
    const bad = await h.cli(['--json', 'scale', 'shop', 'web=lots']);
    assert.equal(bad.code, 2);
    assert.match((JSON.parse(bad.stderr) as { error: { message: string } }).error.message, /not SERVICE=N/);
    // Numbers in flags are checked by the CLI before it asks the server anything (exit 2, the flag named).
    for (const [args, msg] of [
      [['builds', '--limit', 'lots'], /--limit "lots" must be a whole number from 1 to 1000/],
      [['events', 'shop', '--limit', '0'], /--limit "0" must be a whole number from 1 to 1000/],
      [['audit', '--limit', '1e3'], /--limit "1e3" must be a whole number from 1 to 10000/],
      [['top', 'shop', '--once', '--interval', 'often'], /--interval often: /],
      [['cert', 'renew', 'shop.test', '--timeout', 'soon'], /--timeout soon: /],
    ] as const) {
      const r = await h.cli([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
    }
  });

  test('berth apps: environments, services healthy/desired, last deploy', async () => {
    const r = await h.cli(['apps']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^APP\s+ENVS\s+SERVICES\s+READY\s+LAST DEPLOY$/m);
    assert.match(r.stdout, /^shop\s+prod\s+web,worker\s+3\/3\s+\d+[smhd] ago to prod, succeeded$/m);
    const [shop] = await json(['apps']) as { name: string; envs: string[]; healthy: number; desired: number; lastDeployment: { status: string } }[];
    assert.deepEqual([shop!.name, shop!.envs, shop!.healthy, shop!.desired, shop!.lastDeployment.status], ['shop', ['prod'], 3, 3, 'succeeded']);
  });

  test('events --since filters by time; -f --since prints them, then follows live', async () => {
    const t = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await h.api('POST', '/v1/apps/shop/scale', { service: 'worker', replicas: 1 })).status, 202);
    const recent = await json(['events', 'shop', '--since', t]) as { ts: number; kind: string }[];
    assert.deepEqual(recent.map((e) => e.kind), ['service.scaled'], 'only what happened since then');
    const hour = await json(['events', 'shop', '--since', '1h']) as { kind: string }[];
    assert.ok(hour.some((e) => e.kind === 'deployment.succeeded') && hour.at(-1)!.kind === 'service.scaled', 'the deploy is within the hour');
    const bad = await h.cli(['events', 'shop', '--since', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /since "soon" is not a time/);

    const child = spawn(BERTH, ['--json', 'events', 'shop', '-f', '--since', t], { env: h.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const kinds = () => out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { kind: string }).kind);
    try {
      await waitFor(() => kinds().length > 0, { timeoutMs: 15_000, what: 'the events since then, first' });
      assert.deepEqual(kinds(), ['service.scaled']);
      assert.equal((await h.api('POST', '/v1/apps/shop/scale', { service: 'web', replicas: 2 })).status, 202);
      await waitFor(() => kinds().length === 2, { timeoutMs: 15_000, what: 'a new event, live' });
      assert.deepEqual(kinds(), ['service.scaled', 'service.scaled']);
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, 'Ctrl-C ends it cleanly');
  });

  test('restart APP/SERVICE under load: 0 failed requests, every instance replaced; a re-deploy of the file is no change', async () => {
    const before = (await h.containers('shop')).filter((c) => c.running).map((c) => c.id);
    const seq = ((await h.status('shop')).services as { name: string; release: { seq: number } }[]).find((s) => s.name === 'web')!.release.seq;
    const { result: r, ok, failures } = await underLoad(h.ingressPort, () => h.cli(['--json', 'restart', 'shop/web'], { timeoutMs: 120_000 }));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(failures, [], 'no request failed during the restart');
    assert.ok(ok > 100, `only ${ok} requests`);
    // A stream: NDJSON events, the last line the result.
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { restarts?: { service: string; release: number }[] });
    assert.deepEqual(lines.at(-1)!.restarts!.map((x) => [x.service, x.release]), [['web', seq + 1]]);
    const now = await h.containers('shop');
    const web = now.filter((c) => c.running && !before.includes(c.id));
    assert.equal(web.length, 2, 'both web instances are new containers');
    assert.ok(now.some((c) => before.includes(c.id)), 'the worker was not restarted');
    const st = ((await h.status('shop')).services as { name: string; release: { seq: number; status: string }; healthy: number }[]).find((s) => s.name === 'web')!;
    assert.deepEqual([st.release.seq, st.release.status, st.healthy], [seq + 1, 'healthy', 2]);
    const d = await h.cli(['deploy', '-f', SHOP], { timeoutMs: 180_000 });
    assert.equal(d.code, 0, d.stderr);
    assert.equal(((await h.status('shop')).services as { name: string; release: { seq: number } }[]).find((s) => s.name === 'web')!.release.seq, seq + 1,
      'the restart generation is not part of the release hash');
  });

  test('restart APP INSTANCE under load: only that instance is replaced, 0 failed requests; wrong calls exit 2 and 3', async () => {
    type Svc = { name: string; healthy: number; desired: number; instances: { id: string; health: string }[] };
    const services = async () => (await h.status('shop')).services as Svc[];
    await waitFor(async () => (await services()).every((s) => s.healthy === s.desired && s.instances.length === s.desired), { timeoutMs: 60_000, what: 'shop settled' });
    const web = (await services()).find((s) => s.name === 'web')!;
    const [victim, other] = web.instances.map((i) => i.id);
    const workerIds = (await services()).find((s) => s.name === 'worker')!.instances.map((i) => i.id);
    const { result: r, failures } = await underLoad(h.ingressPort, () => h.cli(['--json', 'restart', 'shop', victim!], { timeoutMs: 120_000 }));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(failures, [], 'no request failed during the restart');
    const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { instance: string; service: string; replacedBy: string[]; ms: number };
    assert.deepEqual([last.instance, last.service, last.replacedBy.length], [victim, 'web', 1]);
    const now = await services();
    const ids = now.find((s) => s.name === 'web')!.instances.map((i) => i.id).sort();
    assert.deepEqual(ids, [other!, last.replacedBy[0]!].sort(), 'the other web instance is untouched, the victim replaced');
    assert.deepEqual(now.find((s) => s.name === 'worker')!.instances.map((i) => i.id), workerIds, 'the worker is untouched');
    // The instance is gone now: 3 with the API's words; an instance with APP/SERVICE is a usage error.
    const gone = await h.cli(['restart', 'shop', victim!]);
    assert.equal(gone.code, 3, gone.stderr);
    assert.match(gone.stderr, new RegExp(`shop/prod has no instance ${victim}`));
    assert.equal((await h.cli(['restart', 'shop/web', other!])).code, 2);
    assert.equal((await h.cli(['restart', 'shpo', other!])).code, 3);
  });

  test('exec APP/SERVICE -- CMD: output streams through, the exit code propagates', async () => {
    const r = await h.cli(['exec', 'shop/worker', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    const env = await h.cli(['exec', 'shop/worker', '--', 'sh', '-c', 'echo $BERTH_SERVICE']);
    assert.deepEqual([env.code, env.stdout], [0, 'worker\n']);
    const node = await h.cli(['exec', 'shop/web', '--', 'node', '-e', 'process.stdout.write(process.env.BERTH_SERVICE); process.exit(5)']);
    assert.deepEqual([node.code, node.stdout], [5, 'web']);
    const id = ((await h.status('shop')).services as { name: string; instances: { id: string }[] }[]).find((s) => s.name === 'web')!.instances[0]!.id;
    const pinned = await h.cli(['exec', 'shop/web', '--instance', id, '--', 'node', '-e', 'process.stdout.write(process.env.BERTH_INSTANCE)']);
    assert.deepEqual([pinned.code, pinned.stdout], [0, id]);
    const missing = await h.cli(['exec', 'shop/web', '--instance', 'nope', '--', 'true']);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no instance "nope" of shop\/prod\/web/);
    const notFound = await h.cli(['exec', 'shop/worker', '--', 'no-such-program']);
    assert.ok(notFound.code === 126 || notFound.code === 127, `exit ${notFound.code}: ${notFound.stderr}`);
    assert.equal((await h.cli(['exec', 'shop', '--', 'true'])).code, 2, 'APP/SERVICE is required');
  });

  test('scale refuses replicas whose memory limits exceed the host\'s memory, with the numbers; --force overrides', async () => {
    // 2 × 128 MiB + 5 × 64 MiB = 576 MiB > 512 MiB.
    const r = await h.cli(['scale', 'shop', 'worker=5']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /shop\/prod\/worker to 5 × 64 MiB/);
    assert.match(r.stderr, /add up to 576 MiB \(320 MiB for the scaled service, 256 MiB for everything else\), more than the host's 512 MiB/);
    assert.match(r.stderr, /--force/);
    assert.equal(await replicas('worker'), 1, 'nothing changed');
    // All or nothing: web=1 alone would fit, but not together with worker=9.
    assert.equal((await h.cli(['scale', 'shop', 'web=1', 'worker=9'])).code, 4);
    assert.deepEqual([await replicas('web'), await replicas('worker')], [2, 1]);
    assert.equal((await h.cli(['scale', 'shop', 'worker=4'])).code, 0, '512 MiB fits exactly');
    const forced = await h.cli(['scale', 'shop', 'worker=5', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(await replicas('worker'), 5);
    assert.equal((await h.cli(['scale', 'shop', 'worker=1'])).code, 0, 'scaling down always fits');
    await waitFor(async () => (await h.containers('shop')).length === 3, { timeoutMs: 30_000, what: 'back to 3 containers' });
  });
});
