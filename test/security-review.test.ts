import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { writeDevCert } from '../src/dev-cert.js';
import { buildApp } from '../src/app.js';
import { globMatches, isGranted } from '../src/features/ovh-auth/access-rules.js';
import { dispatchedApiPath } from '../src/features/ovh-auth/authenticate.js';
import { loadConfig, seedsDemo, startupWarnings } from '../src/config.js';
import { senderFor } from '../src/notify/provider.js';
import { canonicalIp, clientNetworkKey } from '../src/security/addresses.js';
import { lockKeys } from '../src/security/lockout.js';
import { buildTestApp } from './helpers/app.js';
import { callSigned, newCredential, nowSeconds, signedRequest, type SignedRequest } from './helpers/ovh-sign.js';
import { freshIp, freshName, freshPassword, secureKit } from './helpers/secure.js';

// Regression tests of the security review (issue 7): each reproduces an attack that worked on main before its fix.

const ctx = await buildTestApp(t, { auth: true, env: { TRUSTED_PROXIES: '192.0.2.1' } });
const { app } = ctx;
const kit = await secureKit(t, ctx);
const OWNER = 'owner';
await ctx.newService(undefined, OWNER);

/** The operator's bearer token for `owner`: the API as a third-party tool calls it. */
const client = await app.services.auth.createOauthClient(OWNER, 'review');
const tokenRes = await app.inject({
  method: 'POST',
  url: '/1.0/auth/oauth2/token',
  payload: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret },
});
const bearer = { authorization: `Bearer ${tokenRes.json<{ access_token: string }>().access_token}` };
/** Another instance of the service on the same database, with its own in-memory rate limits. */
async function secondInstance(t: Test) {
  const other = await buildApp({ handle: ctx.handle, config: ctx.config, clock: ctx.clock, secretBox: ctx.secretBox });
  t.teardown(() => other.close());
  return other;
}

kit.api = (method, url, payload) =>
  app.inject({ method, url, headers: bearer, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

t.test('1. access rules: a rule full of stars matches a long path in linear time', async (t) => {
  const rule = { method: 'GET' as const, path: '/*a*a*a*a*a*a*!' };
  for (const length of [70, 5000, 50_000]) {
    const started = process.hrtime.bigint();
    t.notOk(isGranted([rule], 'GET', `/dedicatedCloud/${'a'.repeat(length)}`), `${length} a's: refused`);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    // The regular expression of the earlier matcher took 10.9 s for 70 a's.
    t.ok(ms < 50, `${length} a's in ${ms.toFixed(2)} ms`);
  }
  t.ok(globMatches('/*a*a*!', '/xaya!'), 'and still matches what it should');
  t.notOk(globMatches('/a*a', '/a'), 'a star never overlaps its neighbours');
});

t.test(
  '1. access rules: a signed call under a star-heavy rule answers at once, and so does /health/live beside it',
  async (t) => {
    await ctx.newService(undefined, 'redos');
    const keys = await newCredential(app, 'redos', { rules: [{ method: 'GET', path: '/*a*a*a*a*a*a*!' }] });
    const started = Date.now();
    // 95 characters: the router's longest parameter is 100 (a longer one is 414); the earlier matcher took 10.9 s at 70.
    const [res, health] = await Promise.all([
      callSigned(app, keys, { method: 'GET', url: `/1.0/dedicatedCloud/${'a'.repeat(95)}` }),
      app.inject({ method: 'GET', url: '/health/live' }),
    ]);
    t.equal(res.statusCode, 403);
    t.match(res.json(), { errorCode: 'NOT_GRANTED_CALL' });
    t.equal(health.statusCode, 200);
    t.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
  },
);

t.test('1. access rules: a credential request with more than 8 stars in a rule is refused', async (t) => {
  const { applicationKey } = await app.services.auth.createApplication(OWNER);
  const res = await app.inject({
    method: 'POST',
    url: '/1.0/auth/credential',
    headers: { 'x-ovh-application': applicationKey },
    payload: { accessRules: [{ method: 'GET', path: '/*a*a*a*a*a*a*a*a*a' }] },
  });
  t.equal(res.statusCode, 400);
  t.match(res.json(), { message: /^\[accessRules\] .*more than 8 \*/ });
});

t.test('2. access rules: a # in the target can no longer reach a route outside the rules', async (t) => {
  const svc = await ctx.newService(undefined, 'hash');
  const keys = await newCredential(app, 'hash', { rules: [{ method: 'POST', path: '/dedicatedCloud/*/twoFAWhitelist' }] });
  const before = await app.services.users.list(svc);
  // Over a real socket: the HTTP client keeps the target as written, `#` included (inject would drop it).
  const server = await buildApp({ handle: ctx.handle, config: ctx.config, clock: ctx.clock, secretBox: ctx.secretBox });
  await server.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  const host = `127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  const attacks = [
    {
      method: 'POST' as const,
      url: `/1.0/dedicatedCloud/${svc}/user#/twoFAWhitelist`,
      body: { name: 'evil', tokenValidator: true },
    },
    { method: 'POST' as const, url: `/1.0/dedicatedCloud/${svc}/changeProperties#/twoFAWhitelist`, body: { description: 'x' } },
    { method: 'GET' as const, url: `/1.0/dedicatedCloud/${svc}#/x/twoFAWhitelist` },
  ];
  for (const attack of attacks) {
    const res = await overSocket(signedRequest(keys, { ...attack, host, timestamp: nowSeconds(app) }));
    t.equal(res.status, 400, `${attack.method} ${attack.url}: ${res.body}`);
    t.match(JSON.parse(res.body), { class: 'Client::BadRequest', message: /fragment/ });
  }
  t.strictSame(await app.services.users.list(svc), before, 'no user was created');
  const allowed = await overSocket(
    signedRequest(keys, {
      method: 'POST',
      url: `/1.0/dedicatedCloud/${svc}/twoFAWhitelist`,
      body: { ip: '203.0.113.0/24', description: 'granted' },
      host,
      timestamp: nowSeconds(app),
    }),
  );
  t.equal(allowed.status, 200, `the granted call still works: ${allowed.body}`);
});

/** Sends an inject-style request over a real HTTP connection, its target byte for byte. */
function overSocket(request: SignedRequest): Promise<{ status: number; body: string }> {
  const [hostname, port] = request.headers.host!.split(':');
  return new Promise((resolve, reject) => {
    const req = http.request(
      { hostname, port: Number(port), method: request.method, path: request.url, headers: request.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(request.payload);
  });
}

t.test('2. access rules see the path the router dispatched, parameters as it read them', async (t) => {
  t.equal(
    dispatchedApiPath('/1.0/dedicatedCloud/:serviceName/twoFAWhitelist/:id', { serviceName: 'pcc-1', id: '5' }),
    '/dedicatedCloud/pcc-1/twoFAWhitelist/5',
  );
  t.equal(dispatchedApiPath('/v1/auth/currentCredential', {}), '/auth/currentCredential');
});

t.test(
  '3. the validation gate: the API can no longer switch it off by demoting, disabling or removing the validator',
  async (t) => {
    const svc = await ctx.newService();
    const validator = await kit.validator(svc);
    const victim = await kit.plainUser(svc, { phone: false, approver: validator });
    const url = (path: string) => `/1.0/dedicatedCloud/${svc}/user/${path}`;
    for (const [what, res] of [
      ['demote', await kit.api('POST', url(`${validator.userId}/changeProperties`), { tokenValidator: false })],
      ['disable', await kit.api('POST', url(`${validator.userId}/disable`))],
      ['remove', await kit.api('DELETE', url(`${validator.userId}`))],
    ] as const) {
      t.equal(res.statusCode, 200, what);
      t.equal(res.json().state, 'waitingTodo', `${what} waits for a token validator`);
    }
    await kit.settle();
    const row = await kit.userRow(validator.userId);
    t.match(row, { is_token_validator: true, deleted_at: null }, 'nothing applied');
    t.equal((await kit.session(svc, validator)).scope, 'full', 'the validator still logs in while a removal waits');
    // The attack went on with an API password change, applied at once once nothing was gated: now it waits too.
    const password = freshPassword();
    const change = await kit.api('POST', url(`${victim.userId}/changePassword`), { password });
    t.equal(change.json().state, 'waitingTodo');
    await kit.settle();
    t.equal((await kit.login(svc, { login: victim.name, password })).statusCode, 401, 'the new password is not set');
  },
);

t.test('3. the validation gate: a 2FA bypass (twoFAWhitelist entry) waits for a validator; unvalidated, it goes', async (t) => {
  const svc = await ctx.newService();
  await kit.validator(svc);
  const res = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/twoFAWhitelist`, { ip: '198.51.100.0/24', description: 'x' });
  t.equal(res.json().state, 'waitingTodo');
  const [id] = (await kit.api('GET', `/1.0/dedicatedCloud/${svc}/twoFAWhitelist`)).json<number[]>();
  ctx.clock.advance(15 * 60_000 + 1000);
  await kit.settle();
  t.equal((await kit.task(svc, res.json().taskId)).state, 'canceled');
  t.equal((await kit.api('GET', `/1.0/dedicatedCloud/${svc}/twoFAWhitelist/${id}`)).json().state, 'removed');
});

t.test('3. the validation gate: an operator-only operation cannot be validated with a token', async (t) => {
  const svc = await ctx.newService();
  const validator = await kit.validator(svc);
  await ctx.handle.db.updateTable('pcc_user').set({ phone_confirmed: false }).where('user_id', '=', validator.userId).execute();
  const res = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user`, { name: freshName(), password: freshPassword() });
  t.equal(res.json().state, 'waitingTodo');
  const op = await kit.operationOf(res.json().taskId);
  t.equal(op.approval, 'operator');
  const { sessionToken } = await kit.session(svc, validator);
  const attempt = await kit.secure('POST', svc, `/operation/${op.operation_id}/validate`, {
    session: sessionToken,
    payload: { token: '12345678' },
  });
  t.equal(attempt.statusCode, 403);
  t.match(attempt.json().message, /waits for an operator/);
});

t.test('4. lockout: 100 parallel wrong logins from 100 addresses verify at most the free failures', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const answers = await Promise.all(
    Array.from({ length: 100 }, () => kit.login(svc, { login: person.name, password: 'Wrong-password-123!' }, freshIp())),
  );
  const statuses = answers.map((r) => r.statusCode);
  t.equal(statuses.filter((s) => s === 401).length, 5, 'five reached the password check (before: 92)');
  t.equal(statuses.filter((s) => s === 429).length, 95);
  const row = await ctx.handle.db
    .selectFrom('auth_failure')
    .selectAll()
    .where('key', '=', lockKeys.user(svc, person.name).key)
    .executeTakeFirstOrThrow();
  t.match(row, { failures: 5, refused: 95 }, 'every attempt counted');
});

t.test('4. lockout: an operator clears the lock of a client address', async (t) => {
  const ip = freshIp();
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  for (let i = 0; i < 20; i++) await kit.login(svc, { login: `nobody${i}`, password: 'x' }, ip);
  // Another instance: this one's per-minute rate limit (20 logins per address) is spent.
  const other = await secondInstance(t);
  const login = () =>
    other.inject({
      method: 'POST',
      url: `/secure/${svc}/session`,
      remoteAddress: ip,
      payload: { login: person.name, password: person.password },
    });
  t.equal((await login()).statusCode, 429);
  t.equal(await app.services.lockout.clear(lockKeys.network(ip)), true);
  t.equal((await login()).statusCode, 200);
});

t.test("5. spraying: a login of the attacker's own user no longer clears his address's failures", async (t) => {
  const svc = await ctx.newService();
  const mine = await kit.plainUser(svc, { phone: false });
  const victims = await Promise.all([0, 1, 2, 3].map(() => kit.plainUser(svc, { phone: false })));
  const ip = freshIp();
  // Five rounds of four guesses and one login of his own, spread over two instances as a careful attacker would (each
  // instance allows 20 logins a minute from one address).
  const instances = [app, app, app, app, await secondInstance(t)];
  const statuses: number[] = [];
  for (const instance of instances) {
    for (const victim of victims) {
      const res = await instance.inject({
        method: 'POST',
        url: `/secure/${svc}/session`,
        remoteAddress: ip,
        payload: { login: victim.name, password: `guess-${statuses.length}` },
      });
      statuses.push(res.statusCode);
    }
    await instance.inject({
      method: 'POST',
      url: `/secure/${svc}/session`,
      remoteAddress: ip,
      payload: { login: mine.name, password: mine.password },
    });
  }
  t.equal(statuses.filter((s) => s === 401).length, 20, 'twenty guesses reached a password check');
  const row = await ctx.handle.db
    .selectFrom('auth_failure')
    .selectAll()
    .where('key', '=', lockKeys.network(ip).key)
    .executeTakeFirstOrThrow();
  t.equal(row.failures, 20, 'his own logins cleared none of them');
  const next = await instances[4]!.inject({
    method: 'POST',
    url: `/secure/${svc}/session`,
    remoteAddress: ip,
    payload: { login: victims[0]!.name, password: 'one-more' },
  });
  t.equal(next.statusCode, 429, 'the next guess waits');
});

t.test('6. the consumer-key page: failures count per account across addresses, and are audited', async (t) => {
  await ctx.newService(undefined, 'pagevictim');
  await app.services.auth.setPassword('pagevictim', 'correct horse battery staple');
  const keys = await newCredential(app, 'pagevictim', { validity: null });
  const token = new URL(keys.validationUrl).searchParams.get('credentialToken')!;
  const post = (password: string) =>
    app.inject({
      method: 'POST',
      url: '/auth/',
      remoteAddress: freshIp(),
      payload: { credentialToken: token, login: 'pagevictim', password, validity: '1d', decision: 'validated' },
    });
  for (let i = 0; i < 5; i++) t.equal((await post(`wrong-${i}`)).statusCode, 401);
  const locked = await post('correct horse battery staple');
  t.equal(locked.statusCode, 429, 'the sixth try waits, from yet another address');
  t.match(locked.headers['retry-after'], /^\d+$/);
  const events = await ctx.handle.db
    .selectFrom('audit_event')
    .select(['type', 'actor'])
    .where('actor', '=', 'pagevictim')
    .where('type', 'like', 'credential.%')
    .execute();
  t.equal(events.filter((e) => e.type === 'credential.validation.failed').length, 5);
  t.equal(events.filter((e) => e.type === 'credential.validation.locked').length, 1);
});

t.test('7. a redirection that is not ASCII is refused when it is asked for', async (t) => {
  const { applicationKey } = await app.services.auth.createApplication(OWNER);
  for (const redirection of ['https://example.com/\u0100', 'javascript:alert(1)', 'https://exa mple.com/']) {
    const res = await app.inject({
      method: 'POST',
      url: '/1.0/auth/credential',
      headers: { 'x-ovh-application': applicationKey },
      payload: { accessRules: [{ method: 'GET', path: '/*' }], redirection },
    });
    t.equal(res.statusCode, 400, redirection);
    t.match(res.json(), { message: /^\[redirection\]/ });
  }
});

t.test('7. a stored redirection that is not Latin-1 is sent percent-encoded, through the app, never a bare 500', async (t) => {
  await ctx.newService(undefined, 'latin');
  await app.services.auth.setPassword('latin', 'correct horse battery staple');
  const keys = await newCredential(app, 'latin', { validity: null });
  await ctx.handle.db
    .updateTable('credential')
    .set({ redirection: 'https://example.com/\u0100' })
    .where('redirection', 'is', null)
    .where('state', '=', 'pendingValidation')
    .execute();
  const token = new URL(keys.validationUrl).searchParams.get('credentialToken')!;
  const res = await app.inject({
    method: 'POST',
    url: '/auth/',
    remoteAddress: freshIp(),
    payload: {
      credentialToken: token,
      login: 'latin',
      password: 'correct horse battery staple',
      validity: '1d',
      decision: 'validated',
    },
  });
  t.equal(res.statusCode, 303);
  t.equal(res.headers.location, 'https://example.com/%C4%80');
});

t.test('8. security headers: nosniff everywhere, no framing, a CSP on /docs, no HSTS without TLS', async (t) => {
  const api = await app.inject({ method: 'GET', url: '/health/live' });
  t.equal(api.headers['x-content-type-options'], 'nosniff');
  t.equal(api.headers['x-frame-options'], 'DENY');
  t.match(api.headers['content-security-policy'], /default-src 'none'/);
  t.equal(api.headers['strict-transport-security'], undefined);
  const docs = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(docs.statusCode, 200);
  t.match(docs.headers['content-security-policy'], /frame-ancestors 'none'/);
  t.notMatch(docs.headers['content-security-policy'], /unsafe-inline/);
  t.equal(docs.headers['x-frame-options'], 'DENY');
});

t.test('8. security headers: HSTS once the server speaks TLS', async (t) => {
  const dir = t.testdir();
  const { cert, key } = await writeDevCert(dir);
  const tls = await buildApp({
    handle: ctx.handle,
    config: ctx.config,
    clock: ctx.clock,
    https: { key: fs.readFileSync(key), cert: fs.readFileSync(cert) },
  });
  t.teardown(() => tls.close());
  const res = await tls.inject({ method: 'GET', url: '/health/live' });
  t.match(res.headers['strict-transport-security'], /max-age=31536000/);
});

t.test('9. risky ranges: loopback, broadcast, NAT64, too wide and the proxies are refused', async (t) => {
  const svc = await ctx.newService();
  const refused: Array<[string, RegExp]> = [
    ['127.0.0.1', /loopback/],
    ['::1', /loopback/],
    ['255.255.255.255', /broadcast/],
    ['64:ff9b::c000:201', /NAT64/],
    ['::ffff:10.0.0.0/104', /too wide/],
    ['10.0.0.0/8', /too wide.*\/24/],
    ['2001:db8::/32', /too wide.*\/48/],
    ['192.0.2.0/24', /trusted proxy/],
    ['192.0.2.1', /trusted proxy/],
  ];
  for (const [ip, message] of refused) {
    const res = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/twoFAWhitelist`, { ip, description: 'x' });
    t.equal(res.statusCode, 400, ip);
    t.match(res.json().message, message, ip);
  }
  const network = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/allowedNetwork`, { network: '192.0.2.0/24' });
  t.equal(network.statusCode, 400, 'an allowed network may not hold a proxy either');
  t.equal((await kit.api('POST', `/1.0/dedicatedCloud/${svc}/allowedNetwork`, { network: '127.0.0.0/8' })).statusCode, 400);
});

t.test('9. IPv6 clients are counted by their /64', async (t) => {
  t.equal(clientNetworkKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(clientNetworkKey('2001:db8:1:2:bbbb::7'), '2001:db8:1:2::/64');
  t.equal(clientNetworkKey('::ffff:198.51.100.7'), '198.51.100.7');
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  for (let i = 0; i < 20; i++) await kit.login(svc, { login: `nobody${i}`, password: 'x' }, `2001:db8:77:1::${i + 1}`);
  const res = await kit.login(svc, { login: person.name, password: person.password }, '2001:db8:77:1:ffff::9');
  t.equal(res.statusCode, 429, 'another address of the same /64 waits');
  t.equal((await kit.login(svc, { login: person.name, password: person.password }, '2001:db8:77:2::1')).statusCode, 200);
});

t.test('9. a start with PUBLIC_URL but no TRUSTED_PROXIES warns', async (t) => {
  t.match(startupWarnings(loadConfig({ PUBLIC_URL: 'https://pcc.example.com' })), [/TRUSTED_PROXIES is empty/]);
  t.strictSame(startupWarnings(loadConfig({ PUBLIC_URL: 'https://pcc.example.com', TRUSTED_PROXIES: '10.0.0.1' })), []);
});

t.test('10. NODE_ENV=production refuses the log sender and the demo seed', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production', SMS_PROVIDER: 'log' }), /SMS_PROVIDER=log/);
  t.throws(() => loadConfig({ NODE_ENV: 'production', SEED_DEMO: 'true', SMS_PROVIDER: 'ovh' }), /SEED_DEMO/);
  const production = loadConfig({ NODE_ENV: 'production' });
  t.equal(seedsDemo(production), false, 'no demo account by default');
  t.throws(() => senderFor(production), /SMS_PROVIDER must be set/, 'and no default sender');
  t.equal(seedsDemo(loadConfig({})), true, 'a developer still gets the demo');
});

t.test('11. an application can be revoked: its signed calls are refused', async (t) => {
  await ctx.newService(undefined, 'revokee');
  const keys = await newCredential(app, 'revokee');
  t.equal((await callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud' })).statusCode, 200);
  t.match(await app.services.auth.revokeApplication(keys.applicationKey), { revoked: true });
  const res = await callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud' });
  t.equal(res.statusCode, 403);
  t.match(res.json(), { errorCode: 'INVALID_KEY' });
});

t.test('12. a text/plain body is refused, not read as empty under a signature', async (t) => {
  const svc = await ctx.newService(undefined, 'plain');
  const keys = await newCredential(app, 'plain', { rules: [{ method: 'POST', path: '/*' }] });
  const res = await callSigned(app, keys, {
    method: 'POST',
    url: `/1.0/dedicatedCloud/${svc}/twoFAWhitelist`,
    body: '',
    tamper: (request) => {
      request.headers['content-type'] = 'text/plain';
      request.payload = '{"ip":"203.0.113.0/24","description":"x"}';
    },
  });
  t.equal(res.statusCode, 415);
});

t.test('12. __proto__ and constructor.prototype keys in a JSON body are refused', async (t) => {
  const svc = await ctx.newService();
  for (const payload of [
    '{"__proto__":{"admin":true},"ip":"203.0.113.0/24","description":"x"}',
    '{"constructor":{"prototype":{"x":1}}}',
  ]) {
    const res = await app.inject({
      method: 'POST',
      url: `/1.0/dedicatedCloud/${svc}/twoFAWhitelist`,
      headers: { ...bearer, 'content-type': 'application/json' },
      payload,
    });
    t.equal(res.statusCode, 400, payload);
    t.match(res.json().message, /forbidden key/);
  }
});

t.test('12. a forwarded client address that is not an address answers 400, never a 500', async (t) => {
  const svc = await ctx.newService();
  for (const forwarded of ['not-an-ip', '1.2.3.4.5', '1']) {
    const res = await app.inject({
      method: 'POST',
      url: `/secure/${svc}/session`,
      remoteAddress: '192.0.2.1',
      headers: { 'x-forwarded-for': forwarded },
      payload: { login: 'nobody', password: 'x' },
    });
    t.equal(res.statusCode, 400, forwarded);
    t.match(res.json(), { class: 'Client::BadRequest', message: /client address/ });
  }
  t.equal(canonicalIp('fe80::1%eth0'), 'fe80::1', 'a zone id is dropped');
  t.equal(canonicalIp('::ffff:192.0.2.7'), '192.0.2.7');
});
