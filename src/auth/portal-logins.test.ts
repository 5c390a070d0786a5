import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOGIN_CODE_TTL_MS, PortalLogins } from './portal-logins.ts';
import { Unauthorized } from '../core/errors.ts';

function clocked() {
  const clock = { t: 1_000_000, now() { return this.t; } };
  return { clock, logins: new PortalLogins(clock) };
}
const ann = { id: 'u1', name: 'ann' };

test('a login code names whom it logs in, once', () => {
  const { logins } = clocked();
  const { code } = logins.issue(ann);
  assert.deepEqual(logins.exchange(code), ann);
  assert.throws(() => logins.exchange(code), (e: unknown) => e instanceof Unauthorized && /already used or expired/.test(e.message));
  const other = logins.issue({ id: '@admin', name: 'admin' });
  assert.notEqual(other.code, code);
  assert.equal(logins.exchange(other.code).name, 'admin');
});

test('a login code expires after 5 minutes', () => {
  const { clock, logins } = clocked();
  const late = logins.issue(ann);
  const ok = logins.issue(ann);
  clock.t += LOGIN_CODE_TTL_MS - 1;
  assert.equal(logins.exchange(ok.code).id, 'u1');
  clock.t += 1;
  assert.throws(() => logins.exchange(late.code), Unauthorized);
});

test('guesses are refused, and a failed exchange of a real code still spends it', () => {
  const { clock, logins } = clocked();
  assert.throws(() => logins.exchange('x'.repeat(32)), Unauthorized);
  assert.throws(() => logins.exchange(''), Unauthorized);
  const { code } = logins.issue(ann);
  clock.t += LOGIN_CODE_TTL_MS;
  assert.throws(() => logins.exchange(code), Unauthorized);
  clock.t -= LOGIN_CODE_TTL_MS;
  assert.throws(() => logins.exchange(code), Unauthorized);
});
