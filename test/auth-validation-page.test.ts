import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import { sql } from 'kysely';
import type { Validity } from '../src/features/ovh-auth/service.js';
import type { AccessRule } from '../src/db/types.js';
import { buildTestApp } from './helpers/app.js';
import { authErrorBody, callSigned, type OvhKeys } from './helpers/ovh-sign.js';

// One app for the file; the clock only moves forward. Passwords are hashed once (argon2id is slow on purpose).
const ctx = await buildTestApp(t, { auth: true });
const { app } = ctx;
const db = ctx.handle.db;

const ALICE = await ctx.newService('pcc-page-alice', 'alice');
const BOB = await ctx.newService('pcc-page-bob', 'bob');
await ctx.newService('pcc-page-carol', 'carol'); // carol has no password
const ALICE_PASSWORD = 'alice: correct horse battery';
const BOB_PASSWORD = 'bob: tr0ub4dor&3 but longer';
await app.services.auth.setPassword('alice', ALICE_PASSWORD);
await app.services.auth.setPassword('bob', BOB_PASSWORD);

// The page's POST allows 10 requests a minute per address: each request here comes from its own address.
let address = 0;
const nextAddress = () => `198.18.${Math.floor(++address / 250)}.${(address % 250) + 1}`;

type Response = Awaited<ReturnType<typeof app.inject>>;
type Pending = OvhKeys & { validationUrl: string; token: string; path: string };

async function pending(options: { rules?: AccessRule[]; applicationName?: string; redirection?: string } = {}): Promise<Pending> {
  const { applicationKey, applicationSecret } = await app.services.auth.createApplication('alice', options.applicationName);
  const requested = await app.services.auth.requestCredential(
    applicationKey,
    { accessRules: options.rules ?? [{ method: 'GET', path: '/dedicatedCloud/*' }], redirection: options.redirection ?? null },
    'http://127.0.0.1:8080',
  );
  const url = new URL(requested.validationUrl);
  return {
    applicationKey,
    applicationSecret,
    consumerKey: requested.consumerKey,
    validationUrl: requested.validationUrl,
    token: url.searchParams.get('credentialToken')!,
    path: `${url.pathname}${url.search}`,
  };
}

const openPage = (p: Pending) => app.inject({ method: 'GET', url: p.path });

function submit(p: Pending, fields: { login: string; password: string; validity?: string; decision?: string }) {
  return app.inject({
    method: 'POST',
    url: '/auth/',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ credentialToken: p.token, ...fields }).toString(),
    remoteAddress: nextAddress(),
  });
}

async function credentialRow(p: Pending) {
  return db
    .selectFrom('credential')
    .select(['credential_id', 'state', 'expires_at', 'account_id', 'validation_token_hash'])
    .where('consumer_key_hash', '=', createHash('sha256').update(p.consumerKey).digest())
    .executeTakeFirstOrThrow();
}

function assertHtmlPage(t: Test, res: Response, status: number, mentions: RegExp) {
  t.equal(res.statusCode, status, `status ${status}`);
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/);
  const csp = String(res.headers['content-security-policy'] ?? '');
  t.match(csp, /default-src 'none'/, 'CSP: nothing loads by default');
  t.match(csp, /frame-ancestors 'none'/, 'CSP: not framed');
  t.notMatch(csp, /script-src/, 'CSP: no script source allowed');
  t.equal(res.headers['x-frame-options'], 'DENY');
  t.equal(res.headers['cache-control'], 'no-store');
  t.equal(res.headers['referrer-policy'], 'no-referrer', 'the token in the URL does not leak as a referrer');
  t.notMatch(res.body, /<script/i, 'no script on the page');
  t.match(res.body, mentions);
}

const notFoundPage = (t: Test, res: Response) => assertHtmlPage(t, res, 404, /unknown, already used, or expired/);

const invalidCredential = async (t: Test, keys: OvhKeys) => {
  const res = await callSigned(app, keys, { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE}` });
  t.equal(res.statusCode, 403);
  t.strictSame(res.json(), authErrorBody(403, 'INVALID_CREDENTIAL', 'This credential is not valid'));
};

t.test('the validation link renders a form listing the requested rules', async (t) => {
  const p = await pending({
    rules: [
      { method: 'GET', path: '/dedicatedCloud/*' },
      { method: 'POST', path: `/dedicatedCloud/${ALICE}/twoFAWhitelist` },
    ],
    applicationName: 'backup tool',
  });
  const res = await openPage(p);
  assertHtmlPage(t, res, 200, /Authorize an application/);
  t.match(res.body, '<code>GET /dedicatedCloud/*</code>');
  t.match(res.body, `<code>POST /dedicatedCloud/${ALICE}/twoFAWhitelist</code>`);
  t.match(res.body, '<strong>backup tool</strong>');
  t.match(res.body, `<input type="hidden" name="credentialToken" value="${p.token}">`);
  t.match(res.body, /<form method="post" action="\.\/">/);
  t.match(res.body, /name="password" type="password"/);
  for (const validity of ['1h', '1d', '30d', 'unlimited']) t.match(res.body, `<option value="${validity}"`);
  t.notOk(res.body.includes(p.consumerKey), 'the page never shows the consumer key');
});

t.test('the page escapes the application name and the rule paths', async (t) => {
  const p = await pending({
    applicationName: `<script>alert("pwned")</script> & 'co'`,
    rules: [{ method: 'GET', path: "/dedicatedCloud/a'b&c(d)" }],
  });
  const res = await openPage(p);
  assertHtmlPage(t, res, 200, /Authorize an application/);
  t.match(res.body, '&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &#39;co&#39;');
  t.match(res.body, '<code>GET /dedicatedCloud/a&#39;b&amp;c(d)</code>');
  t.notOk(res.body.includes("a'b&c"), 'the raw path is not in the page');
});

t.test('an unknown or malformed link is a 404 page or a 400', async (t) => {
  notFoundPage(t, await app.inject({ method: 'GET', url: `/auth/?credentialToken=${'x'.repeat(32)}` }));
  const missing = await app.inject({ method: 'GET', url: '/auth/' });
  t.equal(missing.statusCode, 400, 'no token at all');
  const long = await app.inject({ method: 'GET', url: `/auth/?credentialToken=${'x'.repeat(65)}` });
  t.equal(long.statusCode, 400, 'an oversized token');
});

t.test('a wrong password renders the form again with 401 and leaves the key pending', async (t) => {
  const p = await pending();
  for (const [login, password] of [
    ['alice', 'not alice password'],
    ['alice', ''],
    ['nobody', ALICE_PASSWORD],
    ['carol', ALICE_PASSWORD],
    ['bob', ALICE_PASSWORD],
  ] as const) {
    const res = await submit(p, { login, password, validity: '1d', decision: 'validated' });
    assertHtmlPage(t, res, 401, /Wrong login or password\./);
    t.match(res.body, `value="${p.token}"`, 'the form can be submitted again');
  }
  t.equal((await credentialRow(p)).state, 'pendingValidation');
  await invalidCredential(t, p);
  t.equal((await openPage(p)).statusCode, 200, 'the link still works');
});

t.test('the right login and password validate the key for the chosen validity', async (t) => {
  const p = await pending();
  const res = await submit(p, { login: 'alice', password: ALICE_PASSWORD, validity: '1d', decision: 'validated' });
  assertHtmlPage(t, res, 200, /Application authorized/);
  const row = await credentialRow(p);
  t.equal(row.state, 'validated');
  t.equal(row.expires_at?.getTime(), ctx.clock.now().getTime() + 86_400_000, 'expires one day from now');
  t.equal(row.validation_token_hash, null, 'the link is spent');
  const call = await callSigned(app, p, { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE}` });
  t.equal(call.statusCode, 200, call.body);
});

t.test('each validity sets its expiration, unlimited none', async (t) => {
  for (const [validity, seconds] of [
    ['1h', 3600],
    ['30d', 2_592_000],
    ['unlimited', null],
  ] as const) {
    const p = await pending();
    const res = await submit(p, { login: 'alice', password: ALICE_PASSWORD, validity, decision: 'validated' });
    t.equal(res.statusCode, 200, validity);
    const row = await credentialRow(p);
    t.equal(row.expires_at?.getTime() ?? null, seconds === null ? null : ctx.clock.now().getTime() + seconds * 1000, validity);
  }
});

t.test('an unknown validity is refused and the key stays pending', async (t) => {
  const p = await pending();
  for (const validity of ['10y', '', 'constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    const res = await submit(p, { login: 'alice', password: ALICE_PASSWORD, validity, decision: 'validated' });
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${JSON.stringify(validity)}: status ${res.statusCode}`);
    t.match(res.body, /Choose a validity from the list\./);
  }
  await t.rejects(
    app.services.auth.validateByOperator(p.consumerKey, 'toString' as Validity),
    { message: /\[validity\]/ },
    'the operator command refuses it too',
  );
  t.equal((await credentialRow(p)).state, 'pendingValidation');
});

t.test('a made-up link is a 404 page before any password is checked: the lockout tells nothing of the password', async (t) => {
  // Found by an attack: the page checked the account password before the link, so without any application key, four
  // wrong passwords, a candidate, then wrong ones told by the lockout's answers whether the candidate was right (a
  // right one cleared the failures).
  const madeUp: Pending = { ...(await pending()), token: 'x'.repeat(32) };
  const keyOf = `account:alice`;
  const before = await ctx.handle.db.selectFrom('auth_failure').select('failures').where('key', '=', keyOf).executeTakeFirst();
  for (const password of ['wrong-1', 'wrong-2', ALICE_PASSWORD, 'wrong-3', 'wrong-4', 'wrong-5', 'wrong-6'])
    notFoundPage(t, await submit(madeUp, { login: 'alice', password, validity: '1h', decision: 'validated' }));
  const after = await ctx.handle.db.selectFrom('auth_failure').select('failures').where('key', '=', keyOf).executeTakeFirst();
  t.same(after, before, "the account's failures are as they were: no password was checked");
});

t.test('a used link is a 404 page, and cannot decide again', async (t) => {
  const p = await pending();
  t.equal((await submit(p, { login: 'alice', password: ALICE_PASSWORD, validity: '1h', decision: 'validated' })).statusCode, 200);
  notFoundPage(t, await openPage(p));
  notFoundPage(t, await submit(p, { login: 'alice', password: ALICE_PASSWORD, validity: 'unlimited', decision: 'validated' }));
  notFoundPage(t, await submit(p, { login: 'alice', password: ALICE_PASSWORD, decision: 'refused' }));
  const row = await credentialRow(p);
  t.equal(row.state, 'validated', 'the first decision stands');
  t.equal(row.expires_at?.getTime(), ctx.clock.now().getTime() + 3_600_000, 'with its validity');
});

t.test('refusing marks the key refused and its calls INVALID_CREDENTIAL', async (t) => {
  const p = await pending({ redirection: 'https://tool.example/after' });
  const res = await submit(p, { login: 'alice', password: ALICE_PASSWORD, validity: '1d', decision: 'refused' });
  assertHtmlPage(t, res, 200, /Request refused/);
  t.equal(res.headers.location, undefined, 'no redirection after a refusal');
  t.equal((await credentialRow(p)).state, 'refused');
  await invalidCredential(t, p);
  notFoundPage(t, await openPage(p));
});

t.test('after validation the page redirects to the redirection URL with 303', async (t) => {
  const redirection = 'https://tool.example/callback?state=abc&x=1';
  const p = await pending({ redirection });
  const res = await submit(p, { login: 'alice', password: ALICE_PASSWORD, validity: '1d', decision: 'validated' });
  t.equal(res.statusCode, 303);
  t.equal(res.headers.location, redirection);
  t.equal((await credentialRow(p)).state, 'validated');
});

t.test('a consumer key belongs to the account that validated it', async (t) => {
  const p = await pending();
  const res = await submit(p, { login: 'bob', password: BOB_PASSWORD, validity: '1d', decision: 'validated' });
  t.equal(res.statusCode, 200);
  const own = await callSigned(app, p, { method: 'GET', url: `/1.0/dedicatedCloud/${BOB}` });
  t.equal(own.statusCode, 200, `bob's service: ${own.body}`);
  const alice = await callSigned(app, p, { method: 'GET', url: `/1.0/dedicatedCloud/${ALICE}` });
  t.equal(alice.statusCode, 404, "not the service of the application's owner");
});

t.test("the operator's validation of a consumer key is audited, with the decision, in one transaction", async (t) => {
  // Found by an attack round: `credential validate` granted a key, by default with no expiry and to any account, and
  // wrote no event, where the page's decisions and the operator's other commands are all audited.
  const p = await pending();
  const cred = await credentialRow(p);
  await app.services.auth.validateByOperator(p.consumerKey, '1d', 'bob', { login: 'operator', ip: null });
  const events = await db
    .selectFrom('audit_event')
    .select(['type', 'actor', 'ip', 'data'])
    .where('type', '=', 'credential.validated')
    .where(sql<boolean>`(data->>'credentialId')::bigint = ${cred.credential_id}`)
    .execute();
  t.match(events, [
    {
      type: 'credential.validated',
      actor: 'operator',
      ip: null,
      data: { credentialId: cred.credential_id, validity: '1d', rules: [{ method: 'GET', path: '/dedicatedCloud/*' }] },
    },
  ]);
  t.equal((await credentialRow(p)).state, 'validated');
});

t.test('a request left pending past CREDENTIAL_VALIDATION_SECONDS expires', async (t) => {
  const p = await pending();
  const other = await pending();
  ctx.clock.advance((ctx.config.CREDENTIAL_VALIDATION_SECONDS - 1) * 1000);
  t.equal((await openPage(other)).statusCode, 200, 'still open a second before');
  ctx.clock.advance(1000);
  notFoundPage(t, await openPage(p));
  notFoundPage(t, await submit(p, { login: 'alice', password: ALICE_PASSWORD, validity: '1d', decision: 'validated' }));
  t.equal((await credentialRow(p)).state, 'pendingValidation', 'never validated');
  await invalidCredential(t, p);
  await t.rejects(app.services.auth.validateByOperator(p.consumerKey, '1d'), 'nor by the operator');
});
