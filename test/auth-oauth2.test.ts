import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import { sql } from 'kysely';
import { buildTestApp } from './helpers/app.js';
import { authErrorBody } from './helpers/ovh-sign.js';
import { recordQueries, verb } from './helpers/query-log.js';

// One app for the file; the clock only moves forward, and tests that move it get their own token.
const ctx = await buildTestApp(t, { auth: true });
const { app } = ctx;
const db = ctx.handle.db;

const ALICE = await ctx.newService('pcc-oauth-alice', 'alice');
const BOB = await ctx.newService('pcc-oauth-bob', 'bob');
const client = await app.services.auth.createOauthClient('alice', 'swagger');

const TOKEN_URL = '/1.0/auth/oauth2/token';
const SERVICE_NOT_FOUND = { class: 'Client::NotFound', message: 'This service does not exist' };
const FORM = 'application/x-www-form-urlencoded';

// The token route allows 30 requests a minute per address: each request here comes from its own address.
let address = 0;
const nextAddress = () => `198.18.${Math.floor(++address / 250)}.${(address % 250) + 1}`;

type Response = Awaited<ReturnType<typeof app.inject>>;

function requestToken(options: { form?: Record<string, string>; json?: unknown; authorization?: string; url?: string }) {
  const headers: Record<string, string> = {};
  let payload: string | undefined;
  if (options.form) {
    headers['content-type'] = FORM;
    payload = new URLSearchParams(options.form).toString();
  } else if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(options.json);
  }
  if (options.authorization) headers.authorization = options.authorization;
  return app.inject({
    method: 'POST',
    url: options.url ?? TOKEN_URL,
    headers,
    remoteAddress: nextAddress(),
    ...(payload === undefined ? {} : { payload }),
  });
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function issuedToken(t: Test, res: Response): Promise<string> {
  t.equal(res.statusCode, 200, res.body);
  const body = res.json<{ access_token: string; token_type: string; expires_in: number }>();
  t.strictSame(Object.keys(body).sort(), ['access_token', 'expires_in', 'token_type']);
  t.equal(body.token_type, 'Bearer');
  t.equal(body.expires_in, ctx.config.OAUTH2_TOKEN_TTL_SECONDS);
  t.match(body.access_token, /^[A-Za-z0-9]{32,}$/);
  t.equal(res.headers['cache-control'], 'no-store', 'Cache-Control: no-store');
  t.equal(res.headers.pragma, 'no-cache');
  return body.access_token;
}

function oauthError(t: Test, res: Response, status: 400 | 401, error: string) {
  t.equal(res.statusCode, status, res.body);
  const body = res.json<{ error: string; error_description?: string }>();
  t.equal(body.error, error, `error ${error}`);
  t.strictSame(
    Object.keys(body).filter((k) => k !== 'error_description'),
    ['error'],
    'RFC 6749 §5.2 body',
  );
  t.equal(res.headers['cache-control'], 'no-store', 'errors are not cached either');
  if (status === 401) t.match(res.headers['www-authenticate'], /^Basic /, 'WWW-Authenticate on 401');
}

const bearer = (token: string, url: string, method: 'GET' | 'POST' = 'GET', payload?: unknown) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });

const credentials = { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret };

t.test('client credentials in a form body get a bearer token, under /1.0 and /v1', async (t) => {
  await issuedToken(t, await requestToken({ form: credentials }));
  await issuedToken(t, await requestToken({ form: credentials, url: '/v1/auth/oauth2/token' }));
});

t.test('client credentials in a JSON body get a bearer token', async (t) => {
  await issuedToken(t, await requestToken({ json: credentials }));
});

t.test('client credentials in HTTP Basic get a bearer token', async (t) => {
  const authorization = basic(client.clientId, client.clientSecret);
  await issuedToken(t, await requestToken({ form: { grant_type: 'client_credentials' }, authorization }));
  await issuedToken(t, await requestToken({ json: { grant_type: 'client_credentials' }, authorization }));
});

t.test('a wrong secret or an unknown client is 401 invalid_client, the same either way', async (t) => {
  const wrong = await requestToken({ form: { ...credentials, client_secret: `${client.clientSecret.slice(1)}x` } });
  oauthError(t, wrong, 401, 'invalid_client');
  const unknown = await requestToken({ form: { ...credentials, client_id: 'pcc-nobody' } });
  oauthError(t, unknown, 401, 'invalid_client');
  t.equal(wrong.body, unknown.body, 'nothing tells a wrong secret from an unknown client');
  oauthError(
    t,
    await requestToken({ form: { grant_type: 'client_credentials' }, authorization: basic(client.clientId, 'wrong') }),
    401,
    'invalid_client',
  );
  oauthError(t, await requestToken({ json: { ...credentials, client_secret: '' } }), 400, 'invalid_request');
});

t.test('malformed HTTP Basic credentials are refused as invalid_client, not a server error', async (t) => {
  const authorization = `Basic ${Buffer.from(`${client.clientId}:%zz`).toString('base64')}`;
  oauthError(t, await requestToken({ form: { grant_type: 'client_credentials' }, authorization }), 401, 'invalid_client');
});

t.test('a grant other than client_credentials is 400 unsupported_grant_type', async (t) => {
  for (const grant_type of ['password', 'authorization_code', 'CLIENT_CREDENTIALS']) {
    oauthError(t, await requestToken({ form: { ...credentials, grant_type } }), 400, 'unsupported_grant_type');
  }
});

t.test('a request missing grant_type, client_id or client_secret is 400 invalid_request', async (t) => {
  const { grant_type: _g, ...noGrant } = credentials;
  const { client_id: _i, ...noId } = credentials;
  const { client_secret: _s, ...noSecret } = credentials;
  for (const form of [noGrant, noId, noSecret]) {
    oauthError(t, await requestToken({ form }), 400, 'invalid_request');
  }
  oauthError(t, await requestToken({}), 400, 'invalid_request');
});

t.test('a token request body that does not parse or validate is 400 invalid_request', async (t) => {
  for (const [contentType, payload] of [
    ['application/json', '{"grant_type":'],
    ['application/json', JSON.stringify({ ...credentials, client_id: 'x'.repeat(129) })],
    ['application/json', '"client_credentials"'],
  ]) {
    const res = await app.inject({
      method: 'POST',
      url: TOKEN_URL,
      headers: { 'content-type': contentType! },
      payload,
      remoteAddress: nextAddress(),
    });
    oauthError(t, res, 400, 'invalid_request');
  }
});

t.test('the token works as a bearer on the API and reaches only its account', async (t) => {
  const token = await issuedToken(t, await requestToken({ form: credentials }));
  const list = await bearer(token, '/1.0/dedicatedCloud');
  t.equal(list.statusCode, 200, list.body);
  t.strictSame(list.json(), [ALICE]);
  t.equal((await bearer(token, `/v1/dedicatedCloud/${ALICE}`)).statusCode, 200);
  const post = await bearer(token, `/1.0/dedicatedCloud/${ALICE}/twoFAWhitelist`, 'POST', {
    ip: '192.0.2.44',
    description: 'by bearer',
  });
  t.equal(post.statusCode, 200, post.body);
  t.equal(post.json<{ createdBy: string }>().createdBy, 'alice');

  for (const path of [`/1.0/dedicatedCloud/${BOB}`, `/1.0/dedicatedCloud/${BOB}/twoFAWhitelist`]) {
    const theirs = await bearer(token, path);
    const none = await bearer(token, path.replace(BOB, 'pcc-nobody'));
    t.equal(theirs.statusCode, 404, path);
    t.strictSame(theirs.json(), SERVICE_NOT_FOUND);
    t.equal(theirs.body, none.body, "another account's service looks like no service");
  }
  const theirPost = await bearer(token, `/1.0/dedicatedCloud/${BOB}/twoFAWhitelist`, 'POST', {
    ip: '192.0.2.45',
    description: '',
  });
  t.equal(theirPost.statusCode, 404);
});

t.test('a bearer call costs one SELECT for its authentication', async (t) => {
  const token = await issuedToken(t, await requestToken({ form: credentials }));
  const statements = await recordQueries(db, async () => {
    t.equal((await bearer(token, '/1.0/dedicatedCloud')).statusCode, 200);
  });
  t.strictSame(statements.map(verb), ['select', 'select'], statements.join(' | '));
  t.match(statements[0], /"oauth_token"/, 'the token lookup, then the service list');
});

t.test('GET /auth/currentCredential answers 400, not a server error, to a bearer token', async (t) => {
  const token = await issuedToken(t, await requestToken({ form: credentials }));
  const res = await bearer(token, '/1.0/auth/currentCredential');
  t.equal(res.statusCode, 400, res.body);
  t.equal(res.json<{ class: string }>().class, 'Client::BadRequest');
  t.equal((await bearer(token, '/1.0/dedicatedCloud')).statusCode, 200, 'the token still works');
});

t.test('POST /auth/logout with a bearer token revokes that token, and only it', async (t) => {
  const token = await issuedToken(t, await requestToken({ form: credentials }));
  const other = await issuedToken(t, await requestToken({ form: credentials }));
  t.equal((await bearer(token, '/1.0/auth/logout', 'POST')).statusCode, 200);
  const after = await bearer(token, '/1.0/dedicatedCloud');
  t.equal(after.statusCode, 403);
  t.match(after.json(), { errorCode: 'INVALID_CREDENTIAL' });
  t.equal((await bearer(other, '/1.0/dedicatedCloud')).statusCode, 200, 'another token of the client still works');
});

t.test('a revoked OAuth2 client gets no token, and its live tokens stop working', async (t) => {
  const doomed = await app.services.auth.createOauthClient('alice', 'to revoke');
  const form = { grant_type: 'client_credentials', client_id: doomed.clientId, client_secret: doomed.clientSecret };
  const token = await issuedToken(t, await requestToken({ form }));
  t.match(await app.services.auth.revokeOauthClient(doomed.clientId), { revoked: true });
  t.equal((await bearer(token, '/1.0/dedicatedCloud')).statusCode, 403, 'the live token');
  t.equal((await requestToken({ form })).statusCode, 401, 'a new token');
  t.match(await app.services.auth.revokeOauthClient(doomed.clientId), { revoked: false }, 'once only');
  t.equal(
    (await bearer(await issuedToken(t, await requestToken({ form: credentials })), '/1.0/dedicatedCloud')).statusCode,
    200,
    'other clients are untouched',
  );
});

t.test('an expired token is 403 INVALID_CREDENTIAL', async (t) => {
  const token = await issuedToken(t, await requestToken({ form: credentials }));
  ctx.clock.advance((ctx.config.OAUTH2_TOKEN_TTL_SECONDS - 1) * 1000);
  t.equal((await bearer(token, '/1.0/dedicatedCloud')).statusCode, 200, 'valid a second before the end');
  ctx.clock.advance(1000);
  const res = await bearer(token, '/1.0/dedicatedCloud');
  t.equal(res.statusCode, 403);
  t.strictSame(res.json(), authErrorBody(403, 'INVALID_CREDENTIAL', 'This token is not valid'));
  t.match(res.headers['x-ovh-queryid'], /^PCC\./);
});

t.test('a malformed or unknown bearer is 403 INVALID_CREDENTIAL', async (t) => {
  const token = await issuedToken(t, await requestToken({ form: credentials }));
  for (const authorization of [
    'Bearer',
    'Bearer ',
    `Bearer ${token} extra`,
    'Bearer <script>',
    `Bearer ${token.slice(0, -1)}`,
    'Bearer A'.padEnd(56, 'A'),
    basic(client.clientId, client.clientSecret),
    token,
  ]) {
    const res = await app.inject({ method: 'GET', url: '/1.0/dedicatedCloud', headers: { authorization } });
    t.equal(res.statusCode, 403, authorization);
    t.strictSame(res.json(), authErrorBody(403, 'INVALID_CREDENTIAL', 'This token is not valid'));
  }
  t.equal((await bearer(token, '/1.0/dedicatedCloud')).statusCode, 200, 'the real token still works');
});

t.test('the token and the client secret are stored only as hashes', async (t) => {
  const token = await issuedToken(t, await requestToken({ form: credentials }));
  const row = await db
    .selectFrom('oauth_token')
    .select(['client_id'])
    .where('token_hash', '=', createHash('sha256').update(token).digest())
    .executeTakeFirst();
  t.equal(row?.client_id, client.clientId, 'oauth_token holds the SHA-256 of the token');
  const clientRow = await db
    .selectFrom('oauth_client')
    .select(['secret_hash'])
    .where('client_id', '=', client.clientId)
    .executeTakeFirstOrThrow();
  t.ok(createHash('sha256').update(client.clientSecret).digest().equals(Buffer.from(clientRow.secret_hash)));

  const tables = (
    await sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`.execute(db)
  ).rows.map((r) => r.name);
  t.ok(tables.includes('oauth_token') && tables.includes('oauth_client'));
  const needles = [token, client.clientSecret].flatMap((s) => [
    s,
    Buffer.from(s).toString('hex'),
    Buffer.from(s).toString('base64'),
  ]);
  let tokens = 0;
  for (const table of tables) {
    const { rows } = await sql<{ row: string }>`SELECT t::text AS row FROM ${sql.table(table)} t`.execute(db);
    if (table === 'oauth_token') tokens = rows.length;
    for (const { row: text } of rows) {
      for (const needle of needles) if (text.includes(needle)) t.fail(`${table} holds a secret in clear: ${text}`);
    }
  }
  t.ok(tokens > 0, `${tokens} tokens scanned`);
});
