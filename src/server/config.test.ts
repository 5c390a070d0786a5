import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './config.ts';

test('BERTH_NICE: -5 unless set; 0 keeps the priority; anything outside -20..19 or not whole is refused naming the variable and what would do', () => {
  assert.equal(loadConfig({}, {}).nice, -5);
  assert.equal(loadConfig({}, { BERTH_NICE: '0' }).nice, 0);
  assert.equal(loadConfig({}, { BERTH_NICE: '-20' }).nice, -20);
  assert.equal(loadConfig({}, { BERTH_NICE: '19' }).nice, 19);
  for (const bad of ['-21', '20', '1.5', 'high', '', ' ']) {
    assert.throws(() => loadConfig({}, { BERTH_NICE: bad }), (e: Error) => {
      assert.match(e.message, new RegExp(`^BERTH_NICE "${bad.replace('.', '\\.')}" is not a nice value: write a whole number from -20 \\(first\\) to 19 \\(last\\)`));
      return true;
    });
  }
});

test('numeric settings: defaults, and a value that is no whole number or too small is refused naming the variable and the least it may be', () => {
  const c = loadConfig({}, {});
  assert.equal(c.logMaxAgeMs, 168 * 3_600_000);
  assert.equal(c.logMaxBytes, 1024 * 1024 * 1024);
  assert.equal(c.metricsIntervalMs, 10_000);
  assert.equal(c.alertIntervalMs, 5000);
  assert.equal(c.buildConcurrency, 1);
  assert.equal(c.buildMemoryBytes, 1024 * 1024 * 1024);
  assert.equal(loadConfig({}, { BERTH_LOG_MAX_MB: '64' }).logMaxBytes, 64 * 1024 * 1024);
  assert.equal(loadConfig({}, { BERTH_METRICS_INTERVAL_MS: '1000' }).metricsIntervalMs, 1000);
  const least: Record<string, number> = {
    BERTH_LOG_MAX_AGE_HOURS: 1, BERTH_LOG_MAX_MB: 1, BERTH_METRICS_INTERVAL_MS: 100, BERTH_ALERT_INTERVAL_MS: 100,
    BERTH_BUILD_CONCURRENCY: 1, BERTH_BUILD_MEMORY_MB: 6, BERTH_REGISTRY_KEEP: 1, BERTH_PULL_TIMEOUT_S: 1, BERTH_PENDING_TIMEOUT_S: 1,
  };
  for (const [name, min] of Object.entries(least)) {
    for (const bad of ['abc', '', '1.5', '2GB', String(min - 1)]) {
      assert.throws(() => loadConfig({}, { [name]: bad }), (e: Error) => {
        assert.equal(e.message, `${name} "${bad}" must be a whole number of at least ${min}`);
        return true;
      }, `${name}=${bad}`);
    }
  }
});

test('log level: info unless set; one of pino\'s levels, else refused naming the flag or variable and the levels', () => {
  assert.equal(loadConfig({}, {}).logLevel, 'info');
  assert.equal(loadConfig({}, { BERTH_LOG_LEVEL: 'debug' }).logLevel, 'debug');
  assert.equal(loadConfig({ logLevel: 'warn' }, { BERTH_LOG_LEVEL: 'debug' }).logLevel, 'warn');
  assert.throws(() => loadConfig({}, { BERTH_LOG_LEVEL: 'loud' }), /^InvalidInput: BERTH_LOG_LEVEL "loud" is not a log level: use one of trace, debug, info, warn, error, fatal, silent/);
  assert.throws(() => loadConfig({ logLevel: 'verbose' }, {}), /--log-level "verbose" is not a log level/);
});
