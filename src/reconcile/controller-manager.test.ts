import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/logger.ts';
import { ControllerManager, type Controller } from './controller-manager.ts';

type Events = { 'release.finished': [{ app: string; env: string }] };

function recorder<K>(name: string, prefix: string, parse: (rest: string) => K | undefined, key: (k: K) => string, seen: string[], fail = false): Controller<K> {
  return {
    name, key: (k) => `${prefix}/${key(k)}`,
    parse: (q) => (q.startsWith(`${prefix}/`) ? parse(q.slice(prefix.length + 1)) : undefined),
    reconcile: async (k) => {
      seen.push(`${name} ${JSON.stringify(k)}`);
      if (fail) throw new Error('round failed');
    },
  };
}

test('each key reaches its own controller, typed; afterRound runs after every round, also a failed one', async () => {
  const m = new ControllerManager<Events>(silentLogger, 2);
  const seen: string[] = [];
  const deployments = recorder('deployments', 'deploy', (id) => ({ id }), (k) => k.id, seen, true);
  const services = recorder('services', 'svc', (r) => {
    const [app, env, service] = r.split('/');
    return app && env && service ? { app, env, service } : undefined;
  }, (k) => `${k.app}/${k.env}/${k.service}`, seen);
  const wakeDeployment = m.register(deployments);
  const wakeService = m.register(services);
  const rounds: string[] = [];
  m.afterRound(deployments, (k) => rounds.push(k.id));
  wakeDeployment({ id: 'd1' });
  wakeService({ app: 'shop', env: 'prod', service: 'web' });
  m.queue.add('nobody/owns/this');
  await m.idle();
  m.stop();
  assert.deepEqual(seen.sort(), ['deployments {"id":"d1"}', 'services {"app":"shop","env":"prod","service":"web"}']);
  assert.deepEqual(rounds, ['d1']);
  assert.throws(() => m.register(services), /registered twice/);
});

test('events reach every listener until it unsubscribes', () => {
  const m = new ControllerManager<Events>(silentLogger, 1);
  const got: string[] = [];
  const off = m.on('release.finished', (k) => got.push(`a ${k.app}/${k.env}`));
  m.on('release.finished', (k) => got.push(`b ${k.app}/${k.env}`));
  m.emit('release.finished', { app: 'shop', env: 'prod' });
  off();
  m.emit('release.finished', { app: 'shop', env: 'pre' });
  assert.deepEqual(got, ['a shop/prod', 'b shop/prod', 'b shop/pre']);
  m.stop();
});
