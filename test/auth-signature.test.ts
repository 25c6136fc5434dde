import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import { sql } from 'kysely';
import type { AccessRule } from '../src/db/types.js';
import { candidateUrls, ovhSignature, signatureMatches } from '../src/features/ovh-auth/signature.js';
import { buildTestApp } from './helpers/app.js';
import { recordQueries, verb } from './helpers/query-log.js';
import {
  DEFAULT_HOST,
  authErrorBody,
  callSigned,
  consumerKeyFor,
  newCredential,
  nowSeconds,
  pythonJson,
  sign,
} from './helpers/ovh-sign.js';

// One app and database for the file (a fresh database costs seconds). The clock only moves forward: tests that move
// it make their own credentials, and every signature is made at the clock's current time.
const ctx = await buildTestApp(t, { auth: true });
const { app } = ctx;
const db = ctx.handle.db;

const ALICE_1 = await ctx.newService('pcc-alice-1', 'alice');
const ALICE_2 = await ctx.newService('pcc-alice-2', 'alice');
const BOB_1 = await ctx.newService('pcc-bob-1', 'bob');

const ALL = [
  { method: 'GET', path: '/*' },
  { method: 'POST', path: '/*' },
] as const;
/** Alice's everyday key: every GET and POST, unlimited. */
const alice = await newCredential(app, 'alice', { rules: [...ALL] });

const wl = (service: string, prefix = '/1.0') => `${prefix}/dedicatedCloud/${service}/twoFAWhitelist`;
const SERVICE_NOT_FOUND = { class: 'Client::NotFound', message: 'This service does not exist' };
const ovhDate = (date: Date) => `${date.toISOString().slice(0, 19)}+00:00`;

type Response = Awaited<ReturnType<typeof app.inject>>;

function assertAuthError(t: Test, res: Response, status: 400 | 403, errorCode: string, message: string | RegExp) {
  t.equal(res.statusCode, status, `status ${status}`);
  t.match(res.headers['content-type'], /^application\/json/, 'JSON body');
  t.match(res.headers['x-ovh-queryid'], /^PCC\.[A-Za-z0-9-]+\.[0-9a-f]+\.[0-9a-f]{12}$/, 'X-Ovh-QueryID');
  const body = res.json<Record<string, unknown>>();
  if (typeof message === 'string') {
    t.strictSame(body, authErrorBody(status, errorCode, message), 'OVH auth error body');
  } else {
    t.strictSame(Object.keys(body).sort(), ['class', 'errorCode', 'httpCode', 'message'], 'body keys');
    t.strictSame({ ...body, message: undefined }, { ...authErrorBody(status, errorCode, ''), message: undefined });
    t.match(body.message, message, 'message');
  }
}

const invalidSignature = (t: Test, res: Response) => assertAuthError(t, res, 400, 'INVALID_SIGNATURE', 'Invalid signature');
const invalidCredential = (t: Test, res: Response) =>
  assertAuthError(t, res, 403, 'INVALID_CREDENTIAL', 'This credential is not valid');
const notCredential = (t: Test, res: Response) =>
  assertAuthError(t, res, 403, 'NOT_CREDENTIAL', 'This credential does not exist');
const notGranted = (t: Test, res: Response) => assertAuthError(t, res, 403, 'NOT_GRANTED_CALL', 'This call has not been granted');
const invalidKey = (t: Test, res: Response) => assertAuthError(t, res, 403, 'INVALID_KEY', 'Invalid application key');

async function whitelistRows(service: string): Promise<number> {
  const row = await db
    .selectFrom('two_fa_whitelist')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('service_name', '=', service)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

// ---- open routes ------------------------------------------------------------------------------------------------

t.test('GET /auth/time answers the clock as a bare integer, without authentication, under both prefixes', async (t) => {
  for (const prefix of ['/1.0', '/v1']) {
    const res = await app.inject({ method: 'GET', url: `${prefix}/auth/time` });
    t.equal(res.statusCode, 200);
    t.equal(res.body, String(Math.floor(ctx.clock.now().getTime() / 1000)), `${prefix}: the clock's unix seconds, bare`);
    t.match(res.headers['x-ovh-queryid'], /^PCC\./);
  }
  ctx.clock.advance(5000);
  const later = await app.inject({ method: 'GET', url: '/1.0/auth/time' });
  t.equal(later.body, String(Math.floor(ctx.clock.now().getTime() / 1000)), 'it follows the clock');
});

t.test('POST /auth/credential with only X-Ovh-Application returns a pending consumer key and its validation URL', async (t) => {
  const { applicationKey, applicationSecret } = await app.services.auth.createApplication('alice');
  const res = await app.inject({
    method: 'POST',
    url: '/1.0/auth/credential',
    headers: { host: DEFAULT_HOST, 'x-ovh-application': applicationKey, 'content-type': 'application/json' },
    // python-ovh's request_consumerkey(): omitted options are sent as null
    payload: pythonJson({ accessRules: [{ method: 'GET', path: '/dedicatedCloud/*' }], redirection: null, allowedIPs: null }),
  });
  t.equal(res.statusCode, 200, res.body);
  const body = res.json<{ consumerKey: string; state: string; validationUrl: string }>();
  t.strictSame(Object.keys(body).sort(), ['consumerKey', 'state', 'validationUrl']);
  t.match(body.consumerKey, /^[A-Za-z0-9]{32}$/, '32 alphanumerics');
  t.equal(body.state, 'pendingValidation');
  t.match(body.validationUrl, /^http:\/\/127\.0\.0\.1:8080\/auth\/\?credentialToken=[A-Za-z0-9]{32}$/);
  t.notOk(body.validationUrl.includes(body.consumerKey), 'the consumer key never appears in the link');

  // usable only once validated
  const keys = { applicationKey, applicationSecret, consumerKey: body.consumerKey };
  invalidCredential(t, await callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud' }));
  await app.services.auth.validateByOperator(body.consumerKey, 'unlimited');
  const ok = await callSigned(app, keys, { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE_1}` });
  t.equal(ok.statusCode, 200, ok.body);
});

t.test('POST /auth/credential without a known application key is 403 INVALID_KEY', async (t) => {
  const payload = { accessRules: [{ method: 'GET', path: '/*' }] };
  invalidKey(t, await app.inject({ method: 'POST', url: '/1.0/auth/credential', payload }));
  invalidKey(
    t,
    await app.inject({ method: 'POST', url: '/1.0/auth/credential', headers: { 'x-ovh-application': 'nope' }, payload }),
  );
});

t.test('POST /auth/credential refuses malformed access rules with 400 and stores nothing', async (t) => {
  const { applicationKey } = await app.services.auth.createApplication('alice');
  const count = async () =>
    Number(
      (
        await db
          .selectFrom('credential')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const before = await count();
  const bad: Record<string, unknown>[] = [
    { accessRules: [] },
    {},
    { accessRules: [{ method: 'HEAD', path: '/*' }] },
    { accessRules: [{ method: 'get', path: '/*' }] },
    { accessRules: [{ method: 'GET' }] },
    { accessRules: [{ path: '/*' }] },
    { accessRules: [{ method: 'GET', path: 'dedicatedCloud/*' }] },
    { accessRules: [{ method: 'GET', path: '/dedicatedCloud/<script>' }] },
    { accessRules: [{ method: 'GET', path: '/*', extra: 1 }] },
    { accessRules: [{ method: 'GET', path: '/*' }], allowedIPs: ['not-an-ip'] },
    { accessRules: [{ method: 'GET', path: '/*' }], redirection: 'javascript:alert(1)' },
  ];
  for (const payload of bad) {
    const res = await app.inject({
      method: 'POST',
      url: '/1.0/auth/credential',
      headers: { 'x-ovh-application': applicationKey },
      payload,
    });
    t.equal(res.statusCode, 400, `${JSON.stringify(payload)}: ${res.body}`);
    t.equal(res.json<{ class: string }>().class, 'Client::BadRequest');
  }
  t.equal(await count(), before, 'no credential was stored');
});

// ---- signed calls that succeed ----------------------------------------------------------------------------------

t.test('a correctly signed GET succeeds and sees only its account', async (t) => {
  const res = await callSigned(app, alice, { method: 'GET', url: '/1.0/dedicatedCloud' });
  t.equal(res.statusCode, 200, res.body);
  t.strictSame(res.json<string[]>().sort(), [ALICE_1, ALICE_2]);
});

t.test('a signed GET with a query string is signed with its query string', async (t) => {
  const res = await callSigned(app, alice, { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE_1}/task?state=todo` });
  t.equal(res.statusCode, 200, res.body);
});

t.test('a correctly signed POST is checked over the raw body, non-ASCII escaped as python-ovh sends it', async (t) => {
  const body = pythonJson({ ip: '203.0.113.7', description: 'café d’été' });
  t.ok(body.includes('caf\\u00e9 d\\u2019\\u00e9t\\u00e9'), 'the body really carries \\u escapes');
  const res = await callSigned(app, alice, { method: 'POST', url: wl(ALICE_1), body });
  t.equal(res.statusCode, 200, res.body);
  const ids = await callSigned(app, alice, { method: 'GET', url: wl(ALICE_1) });
  const id = ids.json<number[]>().at(-1);
  const entry = await callSigned(app, alice, { method: 'GET', url: `${wl(ALICE_1)}/${id}` });
  t.equal(entry.json<{ description: string }>().description, 'café d’été');
});

t.test('a body sent as raw UTF-8 (go-ovh) is checked over its UTF-8 bytes', async (t) => {
  const body = JSON.stringify({ ip: '203.0.113.8', description: 'café' });
  const res = await callSigned(app, alice, { method: 'POST', url: wl(ALICE_1), body });
  t.equal(res.statusCode, 200, res.body);
});

t.test('the URL signed by each client is accepted', async (t) => {
  const url = `/1.0/dedicatedCloud/${ALICE_1}`;
  const python = await callSigned(app, alice, { method: 'GET', url, host: '127.0.0.1:8080' });
  t.equal(python.statusCode, 200, `python/go: http://<Host with port><url>: ${python.body}`);
  const node = await callSigned(app, alice, { method: 'GET', url, host: '127.0.0.1:8443', signedBase: 'https://127.0.0.1' });
  t.equal(node.statusCode, 200, `node: https://<host without port><url>: ${node.body}`);
  const ipv6 = await callSigned(app, alice, { method: 'GET', url, host: '[::1]:8443', signedBase: 'https://[::1]' });
  t.equal(ipv6.statusCode, 200, `node on an IPv6 host: ${ipv6.body}`);
  const noPort = await callSigned(app, alice, { method: 'GET', url, host: 'api.local' });
  t.equal(noPort.statusCode, 200, `a Host without port: ${noPort.body}`);
});

t.test('a URL signed for another host, scheme or port is refused', async (t) => {
  const url = `/1.0/dedicatedCloud/${ALICE_1}`;
  for (const signedBase of [
    'http://evil.example:8080',
    'https://127.0.0.1:8080',
    'http://127.0.0.1',
    'https://api.example.test',
  ]) {
    invalidSignature(t, await callSigned(app, alice, { method: 'GET', url, host: '127.0.0.1:8080', signedBase }));
  }
});

t.test('PUBLIC_URL is accepted as the signed base URL and is the base of validation links', async (t) => {
  const pub = await buildTestApp(t, { auth: true, env: { PUBLIC_URL: 'https://api.example.test' } });
  await pub.newService('pcc-pub-1', 'carol');
  const keys = await newCredential(pub.app, 'carol');
  const res = await callSigned(pub.app, keys, {
    method: 'GET',
    url: '/1.0/dedicatedCloud/pcc-pub-1',
    host: '10.0.0.5:3000',
    signedBase: 'https://api.example.test',
  });
  t.equal(res.statusCode, 200, res.body);
  const direct = await callSigned(pub.app, keys, { method: 'GET', url: '/1.0/dedicatedCloud/pcc-pub-1', host: '10.0.0.5:3000' });
  t.equal(direct.statusCode, 200, 'the URL as addressed is still accepted');

  const req = await pub.app.inject({
    method: 'POST',
    url: '/1.0/auth/credential',
    headers: { host: 'evil.example', 'x-ovh-application': keys.applicationKey },
    payload: { accessRules: [{ method: 'GET', path: '/*' }] },
  });
  t.match(req.json<{ validationUrl: string }>().validationUrl, /^https:\/\/api\.example\.test\/auth\/\?credentialToken=/);
});

t.test('/v1 is signed and served like /1.0, and a /1.0 signature does not open /v1', async (t) => {
  const v1 = await callSigned(app, alice, { method: 'GET', url: '/v1/dedicatedCloud' });
  t.equal(v1.statusCode, 200, v1.body);
  t.strictSame(v1.json<string[]>().sort(), [ALICE_1, ALICE_2]);
  const post = await callSigned(app, alice, {
    method: 'POST',
    url: wl(ALICE_2, '/v1'),
    body: { ip: '198.51.100.9', description: 'v1' },
  });
  t.equal(post.statusCode, 200, post.body);
  invalidSignature(
    t,
    await callSigned(app, alice, {
      method: 'GET',
      url: '/1.0/dedicatedCloud',
      tamper: (r) => {
        r.url = '/v1/dedicatedCloud';
      },
    }),
  );
});

// ---- tampering --------------------------------------------------------------------------------------------------

t.test('a body changed after signing is 400 INVALID_SIGNATURE and changes nothing', async (t) => {
  const before = await whitelistRows(ALICE_2);
  const body = { ip: '192.0.2.10', description: 'signed' };
  for (const tampered of [
    pythonJson({ ...body, ip: '0.0.0.0/8' }),
    pythonJson(body).replace(':', ': '), // same JSON value, other bytes
    JSON.stringify({ ...body, description: 'signéd' }),
  ]) {
    const res = await callSigned(app, alice, {
      method: 'POST',
      url: wl(ALICE_2),
      body,
      tamper: (r) => {
        r.payload = tampered;
      },
    });
    invalidSignature(t, res);
  }
  t.equal(await whitelistRows(ALICE_2), before, 'no entry was added');
  const control = await callSigned(app, alice, { method: 'POST', url: wl(ALICE_2), body });
  t.equal(control.statusCode, 200, 'the same call, untouched, passes');
});

t.test('a 400 authentication error keeps errorCode and httpCode on the whitelist and task routes too', async (t) => {
  const forged = { ...alice, applicationSecret: 'not the secret' };
  invalidSignature(t, await callSigned(app, forged, { method: 'GET', url: wl(ALICE_1) }));
  invalidSignature(t, await callSigned(app, forged, { method: 'GET', url: `/v1/dedicatedCloud/${ALICE_1}/task?state=todo` }));
  const stale = nowSeconds(app) - 3600;
  const late = await callSigned(app, alice, { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE_1}/task`, timestamp: stale });
  assertAuthError(t, late, 400, 'QUERY_TIME_OUT', 'Query out of time');
});

t.test('a URL, query string or method changed after signing is 400 INVALID_SIGNATURE', async (t) => {
  const setUrl = (url: string) => (r: { url: string }) => {
    r.url = url;
  };
  const cases: [string, Parameters<typeof callSigned>[2]][] = [
    ['another path', { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE_1}`, tamper: setUrl(`/1.0/dedicatedCloud/${ALICE_2}`) }],
    [
      'another query',
      { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE_1}?a=1`, tamper: setUrl(`/1.0/dedicatedCloud/${ALICE_1}?a=2`) },
    ],
    [
      'a query added',
      { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE_1}`, tamper: setUrl(`/1.0/dedicatedCloud/${ALICE_1}?a=1`) },
    ],
    [
      'a query removed',
      { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE_1}?a=1`, tamper: setUrl(`/1.0/dedicatedCloud/${ALICE_1}`) },
    ],
    [
      'the method',
      {
        method: 'POST',
        url: '/1.0/dedicatedCloud',
        tamper: (r) => {
          r.method = 'GET';
        },
      },
    ],
    [
      'the Host header',
      {
        method: 'GET',
        url: '/1.0/dedicatedCloud',
        tamper: (r) => {
          r.headers.host = '127.0.0.1:9090';
        },
      },
    ],
  ];
  for (const [name, options] of cases) {
    const res = await callSigned(app, alice, options);
    t.test(name, async (t) => invalidSignature(t, res));
  }
});

t.test('a timestamp or consumer key changed after signing is 400 INVALID_SIGNATURE', async (t) => {
  const other = await consumerKeyFor(app, alice.applicationKey, { rules: [...ALL] });
  const header = (name: string, value: string) => (r: { headers: Record<string, string> }) => {
    r.headers[name] = value;
  };
  const now = nowSeconds(app);
  const cases: [string, (r: { headers: Record<string, string> }) => void][] = [
    ['timestamp + 1 s', header('x-ovh-timestamp', String(now + 1))],
    ['timestamp - 1 s', header('x-ovh-timestamp', String(now - 1))],
    ['timestamp not a number', header('x-ovh-timestamp', 'now')],
    ['another consumer key of the same application', header('x-ovh-consumer', other.consumerKey)],
    ['a signature in upper case', (r) => (r.headers['x-ovh-signature'] = r.headers['x-ovh-signature']!.toUpperCase())],
    ['a signature without $1$', (r) => (r.headers['x-ovh-signature'] = r.headers['x-ovh-signature']!.slice(3))],
    ['no signature', (r) => delete r.headers['x-ovh-signature']],
    ['no timestamp', (r) => delete r.headers['x-ovh-timestamp']],
  ];
  for (const [name, tamper] of cases) {
    const res = await callSigned(app, alice, { method: 'GET', url: '/1.0/dedicatedCloud', timestamp: now, tamper });
    t.test(name, async (t) => invalidSignature(t, res));
  }
});

t.test('the timestamp window is ±180 s inclusive; outside it a call is 400 QUERY_TIME_OUT', async (t) => {
  const keys = await newCredential(app, 'alice');
  const call = (timestamp: number) => callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud', timestamp });
  const signedAt = nowSeconds(app);
  ctx.clock.advance(180_000);
  t.equal((await call(signedAt)).statusCode, 200, 'a call signed 180 s ago passes');
  ctx.clock.advance(1000);
  assertAuthError(t, await call(signedAt), 400, 'QUERY_TIME_OUT', 'Query out of time');
  const now = nowSeconds(app);
  t.equal((await call(now + 180)).statusCode, 200, 'a client 180 s ahead passes');
  assertAuthError(t, await call(now + 181), 400, 'QUERY_TIME_OUT', 'Query out of time');
  assertAuthError(t, await call(now - 3600), 400, 'QUERY_TIME_OUT', 'Query out of time');
});

// ---- keys and credentials ---------------------------------------------------------------------------------------

t.test('a call without any OVH header is 403 INVALID_KEY', async (t) => {
  for (const url of ['/1.0/dedicatedCloud', `/1.0/dedicatedCloud/${ALICE_1}`, '/v1/auth/currentCredential']) {
    assertAuthError(t, await app.inject({ method: 'GET', url }), 403, 'INVALID_KEY', /login/);
  }
});

t.test('an unknown application key is 403 INVALID_KEY', async (t) => {
  invalidKey(
    t,
    await callSigned(app, { ...alice, applicationKey: 'unknownAppKey000' }, { method: 'GET', url: '/1.0/dedicatedCloud' }),
  );
  invalidKey(
    t,
    await app.inject({ method: 'GET', url: '/1.0/dedicatedCloud', headers: { 'x-ovh-application': 'unknownAppKey000' } }),
  );
});

t.test('a known application key without a consumer key is 403 NOT_CREDENTIAL', async (t) => {
  notCredential(
    t,
    await app.inject({ method: 'GET', url: '/1.0/dedicatedCloud', headers: { 'x-ovh-application': alice.applicationKey } }),
  );
});

t.test('an unknown consumer key is 403 NOT_CREDENTIAL', async (t) => {
  notCredential(
    t,
    await callSigned(app, { ...alice, consumerKey: 'A'.repeat(32) }, { method: 'GET', url: '/1.0/dedicatedCloud' }),
  );
});

t.test("another application's consumer key is 403 NOT_CREDENTIAL, even with that application's secret", async (t) => {
  const other = await newCredential(app, 'alice');
  const res = await callSigned(app, { ...alice, consumerKey: other.consumerKey }, { method: 'GET', url: '/1.0/dedicatedCloud' });
  notCredential(t, res);
  const mixed = await callSigned(
    app,
    { applicationKey: alice.applicationKey, applicationSecret: other.applicationSecret, consumerKey: other.consumerKey },
    { method: 'GET', url: '/1.0/dedicatedCloud' },
  );
  notCredential(t, mixed);
});

t.test('a consumer key still pending validation is 403 INVALID_CREDENTIAL', async (t) => {
  const pending = await newCredential(app, 'alice', { validity: null });
  invalidCredential(t, await callSigned(app, pending, { method: 'GET', url: '/1.0/dedicatedCloud' }));
});

t.test('a refused consumer key is 403 INVALID_CREDENTIAL', async (t) => {
  const refused = await newCredential(app, 'alice', { validity: null });
  await app.services.auth.setPassword('alice', 'correct horse battery staple');
  const token = new URL(refused.validationUrl).searchParams.get('credentialToken')!;
  const decision = await app.services.auth.decideValidation({
    validationToken: token,
    login: 'alice',
    password: 'correct horse battery staple',
    validity: '1d',
    decision: 'refused',
    ip: '192.0.2.10',
  });
  t.strictSame(decision, { ok: true, redirection: null });
  invalidCredential(t, await callSigned(app, refused, { method: 'GET', url: '/1.0/dedicatedCloud' }));
});

t.test('a consumer key validated for 1h is 403 INVALID_CREDENTIAL once the hour is over', async (t) => {
  const keys = await newCredential(app, 'alice', { validity: '1h' });
  ctx.clock.advance(3599_000);
  const res = await callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud' });
  t.equal(res.statusCode, 200, 'still valid a second before');
  ctx.clock.advance(1000);
  invalidCredential(t, await callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud' }));
});

t.test('POST /auth/logout revokes the consumer key: later calls are 403 INVALID_CREDENTIAL', async (t) => {
  const keys = await newCredential(app, 'alice', { rules: [...ALL] });
  const other = await consumerKeyFor(app, keys.applicationKey, { rules: [...ALL] });
  const res = await callSigned(app, keys, { method: 'POST', url: '/1.0/auth/logout' });
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.body, 'null');
  invalidCredential(t, await callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud' }));
  invalidCredential(t, await callSigned(app, keys, { method: 'POST', url: '/v1/auth/logout' }));
  const sibling = await callSigned(app, { ...keys, ...other }, { method: 'GET', url: '/1.0/dedicatedCloud' });
  t.equal(sibling.statusCode, 200, 'another consumer key of the application still works');
});

// ---- access rules and addresses ---------------------------------------------------------------------------------

t.test('a call outside the access rules is 403 NOT_GRANTED_CALL and changes nothing', async (t) => {
  const readOnly = await newCredential(app, 'alice', { rules: [{ method: 'GET', path: '/dedicatedCloud/*' }] });
  const before = await whitelistRows(ALICE_1);
  notGranted(
    t,
    await callSigned(app, readOnly, { method: 'POST', url: wl(ALICE_1), body: { ip: '192.0.2.99', description: 'x' } }),
  );
  t.equal(await whitelistRows(ALICE_1), before, 'no entry was added');
  notGranted(t, await callSigned(app, readOnly, { method: 'GET', url: '/1.0/dedicatedCloud' }));
  const ok = await callSigned(app, readOnly, { method: 'GET', url: wl(ALICE_1) });
  t.equal(ok.statusCode, 200, 'a GET below /dedicatedCloud/ is granted');
});

t.test("rules for one service's twoFAWhitelist grant nothing else", async (t) => {
  const keys = await newCredential(app, 'alice', {
    rules: [
      { method: 'GET', path: `/dedicatedCloud/${ALICE_1}/twoFAWhitelist` },
      { method: 'GET', path: `/dedicatedCloud/${ALICE_1}/twoFAWhitelist/*` },
      { method: 'GET', path: `/dedicatedCloud/${ALICE_1}/task` },
    ],
  });
  for (const url of [wl(ALICE_1), wl(ALICE_1, '/v1'), `/1.0/dedicatedCloud/${ALICE_1}/task?state=todo`]) {
    const res = await callSigned(app, keys, { method: 'GET', url });
    t.equal(res.statusCode, 200, `${url}: ${res.body}`);
  }
  for (const url of [
    wl(ALICE_2),
    `/1.0/dedicatedCloud/${ALICE_1}`,
    `/1.0/dedicatedCloud/${ALICE_1}/task/1`,
    '/1.0/dedicatedCloud',
    '/1.0/auth/currentCredential',
    `/1.0/dedicatedCloud/${ALICE_1}/twoFAWhitelist/../../${ALICE_2}/twoFAWhitelist`,
    `/1.0/dedicatedCloud/${ALICE_1}%2FtwoFAWhitelist%2F..%2F..%2F${ALICE_2}/twoFAWhitelist`,
  ]) {
    const res = await callSigned(app, keys, { method: 'GET', url });
    t.not(res.statusCode, 200, `${url} is not served`);
    if (res.statusCode === 403) notGranted(t, res);
  }
  notGranted(t, await callSigned(app, keys, { method: 'POST', url: wl(ALICE_1), body: { ip: '192.0.2.1', description: '' } }));
});

t.test('allowedIPs: a call from inside the list passes, from outside is 403 NOT_GRANTED_CALL', async (t) => {
  const keys = await newCredential(app, 'alice', { allowedIPs: ['198.51.100.0/24', '2001:db8::1'] });
  const from = (remoteAddress: string, headers: Record<string, string> = {}) =>
    callSigned(app, keys, {
      method: 'GET',
      url: '/1.0/dedicatedCloud',
      remoteAddress,
      tamper: (r) => Object.assign(r.headers, headers),
    });
  for (const ip of ['198.51.100.7', '198.51.100.255', '::ffff:198.51.100.7', '2001:db8::1']) {
    t.equal((await from(ip)).statusCode, 200, `${ip} is inside`);
  }
  for (const ip of ['198.51.101.7', '203.0.113.9', '2001:db8::2', '::1']) notGranted(t, await from(ip));
  notGranted(t, await from('203.0.113.9', { 'x-forwarded-for': '198.51.100.7' }));
});

// ---- account isolation ------------------------------------------------------------------------------------------

t.test("another account's service answers 404 exactly like a service that does not exist", async (t) => {
  const urls = (service: string) => [`/1.0/dedicatedCloud/${service}`, wl(service), `/v1/dedicatedCloud/${service}/task`];
  for (const [theirs, none] of urls(BOB_1).map((u, i) => [u, urls('pcc-nobody')[i]!] as const)) {
    const a = await callSigned(app, alice, { method: 'GET', url: theirs });
    const b = await callSigned(app, alice, { method: 'GET', url: none });
    t.equal(a.statusCode, 404, theirs);
    t.strictSame(a.json(), SERVICE_NOT_FOUND);
    t.strictSame(b.json(), SERVICE_NOT_FOUND);
    t.equal(a.body, b.body, 'the same bytes');
  }
  const before = await whitelistRows(BOB_1);
  const post = await callSigned(app, alice, { method: 'POST', url: wl(BOB_1), body: { ip: '192.0.2.3', description: 'x' } });
  t.equal(post.statusCode, 404);
  t.strictSame(post.json(), SERVICE_NOT_FOUND);
  t.equal(await whitelistRows(BOB_1), before);
  const bob = await newCredential(app, 'bob');
  const own = await callSigned(app, bob, { method: 'GET', url: `/1.0/dedicatedCloud/${BOB_1}` });
  t.equal(own.statusCode, 200, "bob's own key reaches it");
});

// ---- current credential -----------------------------------------------------------------------------------------

t.test("GET /auth/currentCredential returns OVH's auth.ApiCredential", async (t) => {
  const rules: AccessRule[] = [
    { method: 'GET', path: '/auth/currentCredential' },
    { method: 'GET', path: '/dedicatedCloud/*' },
  ];
  const keys = await newCredential(app, 'alice', { rules, validity: '1d', allowedIPs: ['127.0.0.1'] });
  const validatedAt = ctx.clock.now();
  const first = await callSigned(app, keys, { method: 'GET', url: '/1.0/auth/currentCredential' });
  t.equal(first.statusCode, 200, first.body);
  const cred = first.json<Record<string, unknown>>();
  t.strictSame(Object.keys(cred).sort(), [
    'allowedIPs',
    'applicationId',
    'creation',
    'credentialId',
    'expiration',
    'lastUse',
    'ovhSupport',
    'rules',
    'status',
  ]);
  const app1 = await db
    .selectFrom('application')
    .select('application_id')
    .where('application_key', '=', keys.applicationKey)
    .executeTakeFirstOrThrow();
  t.equal(cred.applicationId, app1.application_id);
  t.type(cred.credentialId, 'number');
  t.match(cred.creation, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/);
  t.equal(cred.expiration, ovhDate(new Date(validatedAt.getTime() + 86_400_000)));
  t.equal(cred.ovhSupport, false);
  t.strictSame(cred.rules, rules);
  t.strictSame(cred.allowedIPs, ['127.0.0.1']);
  t.equal(cred.status, 'validated');

  // last use is recorded (after the reply, best effort)
  for (let i = 0; i < 50; i++) {
    const row = await db
      .selectFrom('credential')
      .select('last_use')
      .where('credential_id', '=', cred.credentialId as number)
      .executeTakeFirstOrThrow();
    if (row.last_use) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const second = await callSigned(app, keys, { method: 'GET', url: '/v1/auth/currentCredential' });
  t.equal(second.json<{ lastUse: string }>().lastUse, ovhDate(validatedAt));
  t.equal(second.json<{ credentialId: number }>().credentialId, cred.credentialId);
});

// ---- secrets at rest --------------------------------------------------------------------------------------------

t.test('the application secret, consumer key and validation token are not stored in clear', async (t) => {
  const keys = await newCredential(app, 'alice', { validity: null });
  const token = new URL(keys.validationUrl).searchParams.get('credentialToken')!;
  const row = await db
    .selectFrom('application')
    .select(['secret_ciphertext'])
    .where('application_key', '=', keys.applicationKey)
    .executeTakeFirstOrThrow();
  t.notOk(row.secret_ciphertext.includes(keys.applicationSecret), 'secret_ciphertext does not contain the secret');
  t.equal(
    ctx.secretBox.open(row.secret_ciphertext, `application:${keys.applicationKey}`),
    keys.applicationSecret,
    'it is the secret, sealed',
  );
  const cred = await db
    .selectFrom('credential')
    .select(['consumer_key_hash', 'validation_token_hash'])
    .where('consumer_key_hash', '=', createHash('sha256').update(keys.consumerKey).digest())
    .executeTakeFirst();
  t.ok(cred, 'the credential row holds the SHA-256 of the consumer key');
  t.ok(
    cred?.validation_token_hash && createHash('sha256').update(token).digest().equals(Buffer.from(cred.validation_token_hash)),
    'and the SHA-256 of the validation token',
  );

  const tables = (
    await sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`.execute(db)
  ).rows.map((r) => r.name);
  t.ok(tables.includes('application') && tables.includes('credential'), `scanned tables: ${tables.join(', ')}`);
  const needles = [keys.applicationSecret, keys.consumerKey, token].flatMap((s) => [
    s,
    Buffer.from(s).toString('hex'),
    Buffer.from(s).toString('base64'),
  ]);
  let rows = 0;
  for (const table of tables) {
    const { rows: texts } = await sql<{ row: string }>`SELECT t::text AS row FROM ${sql.table(table)} t`.execute(db);
    rows += texts.length;
    for (const { row: text } of texts) {
      for (const needle of needles) if (text.includes(needle)) t.fail(`${table} holds a secret in clear: ${text}`);
    }
  }
  t.ok(rows > 10, `${rows} rows scanned`);
});

// ---- cost -------------------------------------------------------------------------------------------------------

t.test(
  'a signed call costs one SELECT for its authentication, none while it is cached (AUTH_CACHE_MS), and no write',
  async (t) => {
    const keys = await newCredential(app, 'alice', { rules: [{ method: 'GET', path: '/dedicatedCloud' }] });
    // warm up: the first call of a credential records its last use
    const warm = await recordQueries(db, async () => {
      t.equal((await callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud' })).statusCode, 200);
    });
    t.ok(
      warm.some((s) => verb(s) === 'update'),
      `the first call records last use: ${warm.join(' | ')}`,
    );
    t.match(warm[0], /"application"/, 'the first statement is the signing lookup');

    const cached = await recordQueries(db, async () => {
      t.equal((await callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud' })).statusCode, 200);
    });
    t.strictSame(cached.map(verb), ['select'], `within AUTH_CACHE_MS, only the service list: ${cached.join(' | ')}`);

    const refused = await recordQueries(db, async () => {
      notGranted(t, await callSigned(app, keys, { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE_1}` }));
    });
    t.strictSame(refused, [], 'a call refused after every check reads nothing more');

    const forged = await recordQueries(db, async () => {
      invalidSignature(
        t,
        await callSigned(app, { ...keys, applicationSecret: 'x' }, { method: 'GET', url: '/1.0/dedicatedCloud' }),
      );
    });
    t.strictSame(forged, [], 'nor does a bad signature');

    ctx.clock.advance(ctx.config.AUTH_CACHE_MS);
    const reread = await recordQueries(db, async () => {
      t.equal((await callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud' })).statusCode, 200);
    });
    t.strictSame(
      reread.map(verb),
      ['select', 'select'],
      `AUTH_CACHE_MS later, the credential is read again: ${reread.join(' | ')}`,
    );
    t.match(reread[0], /"application"/);

    ctx.clock.advance(61_000);
    const later = await recordQueries(db, async () => {
      t.equal((await callSigned(app, keys, { method: 'GET', url: '/1.0/dedicatedCloud' })).statusCode, 200);
    });
    t.ok(
      later.some((s) => verb(s) === 'update'),
      'a minute later, last use is recorded again',
    );
  },
);

// ---- units: the signature itself ------------------------------------------------------------------------------

const VECTOR = {
  applicationSecret: 'EXEgWIz07P0HYwtQDs7cNIqCiQaWSuHF',
  consumerKey: 'MtSwSrPpNjqfVSmJhLbPyr2i45lSwPU1',
  method: 'GET',
  url: 'https://eu.api.ovh.com/1.0/domains/',
  body: '',
  timestamp: '1366560945',
};

t.test("ovhSignature gives OVH's reference vector, and so does the tests' own signer", async (t) => {
  t.equal(ovhSignature(VECTOR), '$1$d3705e8afb27a0d2970a322b96550abfc67bb798');
  t.equal(
    sign({
      as: VECTOR.applicationSecret,
      ck: VECTOR.consumerKey,
      method: 'GET',
      url: VECTOR.url,
      body: '',
      timestamp: 1366560945,
    }),
    '$1$d3705e8afb27a0d2970a322b96550abfc67bb798',
  );
  t.not(ovhSignature({ ...VECTOR, timestamp: '1366560946' }), '$1$d3705e8afb27a0d2970a322b96550abfc67bb798');
});

t.test('ovhSignature hashes the UTF-8 bytes of the body', async (t) => {
  const body = '{"description":"café"}';
  const expected = `$1$${createHash('sha1')
    .update(Buffer.from(`${VECTOR.applicationSecret}+${VECTOR.consumerKey}+POST+${VECTOR.url}+${body}+1`, 'utf8'))
    .digest('hex')}`;
  t.equal(ovhSignature({ ...VECTOR, method: 'POST', body, timestamp: '1' }), expected);
});

t.test('candidateUrls: the URL as addressed, the node variant without port, and PUBLIC_URL', async (t) => {
  t.strictSame(candidateUrls({ protocol: 'http', host: '127.0.0.1:8080', rawUrl: '/1.0/x?a=1' }), [
    'http://127.0.0.1:8080/1.0/x?a=1',
    'https://127.0.0.1/1.0/x?a=1',
  ]);
  t.strictSame(candidateUrls({ protocol: 'https', host: 'api.example.test', rawUrl: '/v1/x' }), [
    'https://api.example.test/v1/x',
  ]);
  t.strictSame(candidateUrls({ protocol: 'http', host: '[2001:db8::1]:3000', rawUrl: '/1.0/x' }), [
    'http://[2001:db8::1]:3000/1.0/x',
    'https://[2001:db8::1]/1.0/x',
  ]);
  t.strictSame(candidateUrls({ protocol: 'http', host: undefined, rawUrl: '/1.0/x', publicUrl: 'https://pub.example' }), [
    'https://pub.example/1.0/x',
  ]);
  t.strictSame(candidateUrls({ protocol: 'http', host: undefined, rawUrl: '/1.0/x' }), []);
});

t.test('signatureMatches accepts any one candidate and nothing else', async (t) => {
  const candidates = ['$1$aaaa', '$1$bbbb'];
  t.ok(signatureMatches(candidates, '$1$bbbb'));
  t.ok(signatureMatches(candidates, '$1$aaaa'));
  t.notOk(signatureMatches(candidates, '$1$bbb'));
  t.notOk(signatureMatches(candidates, '$1$BBBB'));
  t.notOk(signatureMatches(candidates, ''));
  t.notOk(signatureMatches([], '$1$aaaa'));
});
