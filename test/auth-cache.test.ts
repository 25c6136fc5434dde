import t from 'tap';
import { buildApp } from '../src/app.js';
import type { App } from '../src/http/types.js';
import { openDatabase } from '../src/db/database.js';
import { buildTestApp } from './helpers/app.js';
import { callSigned, newCredential } from './helpers/ovh-sign.js';

/**
 * Each instance trusts what it read of a credential, a bearer token or a service's owner for AUTH_CACHE_MS (at most a
 * second): a revocation made on one instance is refused there at once, and on every other instance once that time
 * has passed. Two instances on one database, as two processes would be (PostgreSQL: a pool each).
 */
const ctx = await buildTestApp(t, { auth: true });
const second = ctx.databaseUrl ? await openDatabase({ databaseUrl: ctx.databaseUrl, poolSize: 2 }) : ctx.handle;
const other: App = await buildApp({ handle: second, config: ctx.config, clock: ctx.clock, secretBox: ctx.secretBox });
t.teardown(async () => {
  await other.close();
  if (second !== ctx.handle) await second.close();
});
const instances = { one: ctx.app, two: other };
const CACHE_MS = ctx.config.AUTH_CACHE_MS;

t.test('the cache never outlives a second', async (t) => {
  t.equal(CACHE_MS, 1000, 'the default');
  const { loadConfig } = await import('../src/config.js');
  t.throws(() => loadConfig({ AUTH_CACHE_MS: '1001' }), /AUTH_CACHE_MS/, 'more is a configuration error');
});

const bearerGet = (app: App, token: string, url: string) =>
  app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
const statusesOf = async (call: (app: App) => Promise<{ statusCode: number }>) => ({
  one: (await call(instances.one)).statusCode,
  two: (await call(instances.two)).statusCode,
});

t.test('a consumer key logged out on one instance is refused on every instance within AUTH_CACHE_MS', async (t) => {
  const svc = await ctx.newService(undefined, 'ck-owner');
  const keys = await newCredential(ctx.app, 'ck-owner', {
    rules: [
      { method: 'GET', path: '/*' },
      { method: 'POST', path: '/auth/logout' },
    ],
  });
  const get = (app: App) => callSigned(app, keys, { method: 'GET', url: `/1.0/dedicatedCloud/${svc}` });
  t.strictSame(await statusesOf(get), { one: 200, two: 200 }, 'both instances read and cache it');
  t.equal((await callSigned(instances.one, keys, { method: 'POST', url: '/1.0/auth/logout' })).statusCode, 200);
  t.equal((await get(instances.one)).statusCode, 403, 'refused at once where it was logged out');
  ctx.clock.advance(CACHE_MS);
  t.strictSame(await statusesOf(get), { one: 403, two: 403 }, 'refused everywhere AUTH_CACHE_MS later');
});

t.test('an application revoked by an operator is refused on every instance within AUTH_CACHE_MS', async (t) => {
  const svc = await ctx.newService(undefined, 'app-owner');
  const keys = await newCredential(ctx.app, 'app-owner');
  const get = (app: App) => callSigned(app, keys, { method: 'GET', url: `/1.0/dedicatedCloud/${svc}` });
  t.strictSame(await statusesOf(get), { one: 200, two: 200 });
  // The operator's command runs in a process of its own: neither instance hears of it.
  const cli = await buildApp({ handle: ctx.handle, config: ctx.config, clock: ctx.clock, secretBox: ctx.secretBox });
  t.teardown(() => cli.close());
  t.match(await cli.services.auth.revokeApplication(keys.applicationKey), { revoked: true });
  ctx.clock.advance(CACHE_MS);
  t.strictSame(await statusesOf(get), { one: 403, two: 403 });
});

t.test('a bearer token logged out, or its client revoked, is refused on every instance within AUTH_CACHE_MS', async (t) => {
  const svc = await ctx.newService(undefined, 'oauth-owner');
  const client = await ctx.app.services.auth.createOauthClient('oauth-owner', 'cache');
  const issue = async () => (await ctx.app.services.auth.issueToken(client.clientId, client.clientSecret))!.access_token;
  const url = `/1.0/dedicatedCloud/${svc}`;

  const token = await issue();
  t.strictSame(await statusesOf((app) => bearerGet(app, token, url)), { one: 200, two: 200 });
  const logout = await instances.one.inject({
    method: 'POST',
    url: '/1.0/auth/logout',
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(logout.statusCode, 200);
  t.equal((await bearerGet(instances.one, token, url)).statusCode, 403, 'refused at once where it was logged out');
  ctx.clock.advance(CACHE_MS);
  t.strictSame(await statusesOf((app) => bearerGet(app, token, url)), { one: 403, two: 403 }, 'logout: refused everywhere');

  const kept = await issue();
  t.strictSame(await statusesOf((app) => bearerGet(app, kept, url)), { one: 200, two: 200 });
  const cli = await buildApp({ handle: ctx.handle, config: ctx.config, clock: ctx.clock, secretBox: ctx.secretBox });
  t.teardown(() => cli.close());
  t.match(await cli.services.auth.revokeOauthClient(client.clientId), { revoked: true });
  ctx.clock.advance(CACHE_MS);
  t.strictSame(
    await statusesOf((app) => bearerGet(app, kept, url)),
    { one: 403, two: 403 },
    'client revoked: refused everywhere',
  );
});

t.test('a bearer token is refused everywhere the moment it expires, cached or not', async (t) => {
  const svc = await ctx.newService(undefined, 'expiry-owner');
  const client = await ctx.app.services.auth.createOauthClient('expiry-owner', 'expiry');
  const token = (await ctx.app.services.auth.issueToken(client.clientId, client.clientSecret))!.access_token;
  const url = `/1.0/dedicatedCloud/${svc}`;
  ctx.clock.advance(ctx.config.OAUTH2_TOKEN_TTL_SECONDS * 1000 - 500);
  t.strictSame(await statusesOf((app) => bearerGet(app, token, url)), { one: 200, two: 200 }, 'half a second before');
  ctx.clock.advance(500);
  t.strictSame(await statusesOf((app) => bearerGet(app, token, url)), { one: 403, two: 403 }, 'at its expiry');
});

t.test('a service moved to another account is refused to the old owner on every instance within AUTH_CACHE_MS', async (t) => {
  const svc = await ctx.newService(undefined, 'old-owner');
  await ctx.newService(undefined, 'new-owner');
  const oldKeys = await newCredential(ctx.app, 'old-owner');
  const newKeys = await newCredential(ctx.app, 'new-owner');
  const get = (keys: typeof oldKeys) => (app: App) => callSigned(app, keys, { method: 'GET', url: `/1.0/dedicatedCloud/${svc}` });
  t.strictSame(await statusesOf(get(oldKeys)), { one: 200, two: 200 });
  t.strictSame(await statusesOf(get(newKeys)), { one: 404, two: 404 });
  const owner = await ctx.handle.db
    .selectFrom('account')
    .select('account_id')
    .where('login', '=', 'new-owner')
    .executeTakeFirstOrThrow();
  await ctx.handle.db.updateTable('service').set({ account_id: owner.account_id }).where('service_name', '=', svc).execute();
  ctx.clock.advance(CACHE_MS);
  t.strictSame(await statusesOf(get(oldKeys)), { one: 404, two: 404 }, 'the old owner: as if it did not exist');
  t.strictSame(await statusesOf(get(newKeys)), { one: 200, two: 200 }, 'the new owner reaches it');
});

t.test('concurrent misses of one key share one read; a read begun before clear() fills nothing', async (t) => {
  const { TtlCache } = await import('../src/core/ttl-cache.js');
  const { TestClock } = await import('./helpers/app.js');
  const clock = new TestClock();
  const cache = new TtlCache<string>(clock, 1000);
  let reads = 0;
  const gates: Array<(v: string) => void> = [];
  const load = () =>
    new Promise<string>((resolve) => {
      reads++;
      gates.push(resolve);
    });
  const burst = Array.from({ length: 50 }, () => cache.getOrLoad('k', load));
  t.equal(reads, 1, 'fifty callers, one read');
  gates.shift()!('v1');
  t.same(await Promise.all(burst), Array(50).fill('v1'));
  t.equal(await cache.getOrLoad('k', load), 'v1', 'then served from the cache');
  t.equal(reads, 1);

  clock.advance(1000);
  const expired = cache.getOrLoad('k', load);
  t.equal(reads, 2, 'read again once the entry has expired');
  cache.clear();
  const afterClear = cache.getOrLoad('k', load);
  t.equal(reads, 3, 'a caller after clear() does not join a read begun before it');
  gates.shift()!('stale');
  gates.shift()!('fresh');
  t.equal(await expired, 'stale', 'the caller of the old read gets its answer');
  t.equal(await afterClear, 'fresh');
  t.equal(cache.get('k'), 'fresh', 'only the read begun after clear() filled the cache');

  // A read is trusted from its start: joined only within the cache's time of it, kept until that time after it.
  const slow = cache.getOrLoad('s', load);
  clock.advance(999);
  const joined = cache.getOrLoad('s', load);
  t.equal(reads, 4, 'joined 999 ms after its start');
  clock.advance(1);
  const own = cache.getOrLoad('s', load);
  t.equal(reads, 5, 'not 1000 ms after: a read stuck on a dead connection holds back no later caller');
  gates.shift()!('slow');
  t.equal(await slow, 'slow');
  t.equal(await joined, 'slow');
  t.equal(cache.get('s'), undefined, 'and what it read is already too old to keep');
  gates.shift()!('own');
  t.equal(await own, 'own');
  t.equal(cache.get('s'), 'own');

  const none = new TtlCache<string>(clock, 0);
  const two = [none.getOrLoad('n', load), none.getOrLoad('n', load)];
  t.equal(reads, 7, 'a cache of 0 ms shares nothing: each caller reads');
  gates.shift()!('a');
  gates.shift()!('b');
  t.same(await Promise.all(two), ['a', 'b']);

  const failing = new TtlCache<string>(clock, 1000);
  const refused = [failing.getOrLoad('x', () => Promise.reject(new Error('revoked'))), failing.getOrLoad('x', load)];
  for (const p of refused) await t.rejects(p, /revoked/, 'a failed read fails every caller that shared it');
  t.equal(failing.get('x'), undefined, 'and caches nothing');
  const retried = failing.getOrLoad('x', load);
  gates.shift()!('ok');
  t.equal(await retried, 'ok', 'the next caller reads again');
});
