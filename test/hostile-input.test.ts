import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { sql } from 'kysely';
import t, { type Test } from 'tap';
import type { Db } from '../src/db/database.js';
import type { InjectOptions } from 'fastify';
import type { App } from '../src/http/types.js';
import { buildTestApp, type TestContext } from './helpers/app.js';
import {
  authenticatedRequests,
  routesOf,
  unauthenticatedRequests,
  type Fixture,
  type HostileRequest,
  type OpenApiDocument,
} from './helpers/hostile-input.js';

/**
 * Hostile input generated from the OpenAPI document (openapi/openapi.json, which CI keeps equal to the app's): every
 * route, path and query parameter, body field and credential header, each request invalid by construction (see
 * test/helpers/hostile-input.ts). Every answer must be a 4xx with OVH's error body, nothing may be written, and the
 * server must still serve its callers afterwards.
 *
 * Seeded: FUZZ_SEED replays a run (`random` picks one, printed), FUZZ_RUNS sets the requests of each half. CI runs
 * 2 × 1,100 with a fixed seed; `npm run fuzz` runs 2 × 10,000 with a random one.
 */
const SEED = process.env.FUZZ_SEED === 'random' ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED ?? 20261129);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1100);

const here = path.dirname(fileURLToPath(import.meta.url));
const spec = JSON.parse(fs.readFileSync(path.resolve(here, '../openapi/openapi.json'), 'utf8')) as OpenApiDocument;

/** Row counts of every table of the schema. */
async function tableCounts(db: Db): Promise<Record<string, number>> {
  const { rows } = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1`.execute(db);
  const counts: Record<string, number> = {};
  for (const { name } of rows) {
    const { rows: n } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(name)}`.execute(db);
    counts[name] = Number(n[0]?.n);
  }
  return counts;
}

/** Why `res` is not a 4xx with OVH's error body, or undefined when it is. */
function problemOf(req: HostileRequest, res: { statusCode: number; headers: Record<string, unknown>; body: string }) {
  if (res.statusCode < 400 || res.statusCode > 499) return `status ${res.statusCode}`;
  if (!String(res.headers['content-type']).startsWith('application/json'))
    return `content-type ${String(res.headers['content-type'])}`;
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(res.body) as Record<string, unknown>;
  } catch {
    return 'body is not JSON';
  }
  // The OAuth2 token endpoint answers RFC 6749's error body, as OAuth2 clients (Swagger UI among them) expect.
  if (req.route === 'POST /1.0/auth/oauth2/token' && typeof body.error === 'string' && Object.keys(body).length <= 2) return;
  if (typeof body.message !== 'string' || body.message === '') return 'no message';
  if (typeof body.class !== 'string' || !body.class.startsWith('Client::')) return `class ${String(body.class)}`;
  const extra = Object.keys(body).filter((k) => !['class', 'message', 'errorCode', 'httpCode'].includes(k));
  if (extra.length) return `unexpected fields ${extra.join(', ')}`;
  return undefined;
}

const describe = (req: HostileRequest) =>
  JSON.stringify({ ...req, url: req.url.slice(0, 300), payload: req.payload?.slice(0, 300) }, null, 1);

async function fixtureFor(t: Test, ctx: TestContext): Promise<Fixture> {
  const { app } = ctx;
  const serviceName = await ctx.newService('pcc-fuzz', 'fuzzer');
  const other = await ctx.newService('pcc-fuzz-other', 'someone-else');
  const client = await app.services.auth.createOauthClient('fuzzer');
  const tokenRes = await app.inject({
    method: 'POST',
    url: '/1.0/auth/oauth2/token',
    payload: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret },
  });
  const apiToken = tokenRes.json<{ access_token: string }>().access_token;
  const call = async (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) => {
    const res = await app.inject({
      method,
      url: `/1.0/dedicatedCloud/${serviceName}${url}`,
      headers: { authorization: `Bearer ${apiToken}` },
      ...(payload ? { payload } : {}),
    });
    if (res.statusCode !== 200) throw new Error(`${method} ${url} answered ${res.statusCode}: ${res.body}`);
    return res.json<unknown>();
  };
  type Task = { taskId: number; userId?: number };
  const entry = (await call('POST', '/twoFAWhitelist', { ip: '203.0.113.0/24', description: 'office' })) as Task;
  const network = (await call('POST', '/allowedNetwork', { network: '192.0.2.0/24', description: 'admins' })) as Task;
  const password = 'Fuzz-Passw0rd-Start!';
  const user = (await call('POST', '/user', { name: 'alice', password })) as Task;
  await ctx.worker.drain();
  const login = await app.inject({
    method: 'POST',
    url: `/secure/${serviceName}/session`,
    payload: { login: 'alice', password },
  });
  if (login.statusCode !== 200) throw new Error(`login answered ${login.statusCode}: ${login.body}`);
  const [entryId] = (await call('GET', '/twoFAWhitelist')) as number[];
  const [networkId] = (await call('GET', '/allowedNetwork')) as number[];
  const maxExistingId =
    Math.max(...[entry.taskId, network.taskId, user.taskId, user.userId, entryId, networkId].map(Number)) + 10;
  t.comment(`fixture: service ${serviceName} (and ${other}), entry ${entryId}, network ${networkId}, user ${user.userId}`);
  return {
    pathValues: {
      serviceName,
      id: String(entryId),
      networkAccessId: String(networkId),
      userId: String(user.userId),
      taskId: String(entry.taskId),
      operationId: '1',
    },
    serviceNames: [serviceName, other],
    maxExistingId,
    apiToken,
    sessionToken: login.json<{ sessionToken: string }>().sessionToken,
  };
}

async function stillServes(t: Test, app: App, fixture: Fixture) {
  const live = await app.inject({ method: 'GET', url: '/health/live' });
  t.equal(live.statusCode, 200, 'the server is alive');
  const list = await app.inject({
    method: 'GET',
    url: `/1.0/dedicatedCloud/${fixture.pathValues.serviceName}/twoFAWhitelist`,
    headers: { authorization: `Bearer ${fixture.apiToken}` },
  });
  t.equal(list.statusCode, 200, 'its caller is still served, with the same token');
  const session = await app.inject({
    method: 'GET',
    url: `/secure/${fixture.pathValues.serviceName}/operation/999999`,
    headers: { authorization: `Bearer ${fixture.sessionToken}` },
  });
  // alice is no token validator: a 403 that says so proves her session was recognized (an ended one answers 401).
  t.equal(session.statusCode, 403, 'the /secure session is still open');
  t.match(session.json(), { message: /token validator/ });
}

t.test(`${RUNS * 2} hostile requests from the OpenAPI document: all 4xx with OVH's body, nothing written`, async (t) => {
  const ctx = await buildTestApp(t, { auth: true, env: { RATE_LIMIT_PER_MINUTE: '1000000' } });
  const fixture = await fixtureFor(t, ctx);
  const routes = routesOf(spec);
  t.comment(`seed ${SEED} (replay: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}), ${routes.length} routes`);
  const before = await tableCounts(ctx.handle.db);

  const statuses = new Map<number, number>();
  const kinds = new Map<string, number>();
  const routesSeen = new Set<string>();
  for (const [half, arbitrary] of [
    ['authenticated', authenticatedRequests(routes, fixture)],
    ['unauthenticated', unauthenticatedRequests(routes, fixture)],
  ] as const) {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(arbitrary, async (req) => {
        sent++;
        const res = await ctx.app.inject({
          method: req.method as 'GET',
          url: req.url,
          headers: req.headers,
          ...(req.payload !== undefined ? { payload: req.payload } : {}),
        });
        const problem = problemOf(req, res);
        if (problem)
          throw new Error(`${problem}\nrequest: ${describe(req)}\nanswer: ${res.statusCode} ${res.body.slice(0, 500)}`);
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        for (const part of req.kind.split('+')) {
          const kind = part.replace(/^(\w+)(:([\w-]+))?.*$/, (_, a: string, _b, c: string | undefined) =>
            c && a !== 'body' && a !== 'contentType' ? `${a}:${c}` : a,
          );
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        }
        routesSeen.add(req.route);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    t.comment(`${half}: ${sent} requests`);
  }
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
  t.comment(`faults: ${JSON.stringify(Object.fromEntries([...kinds].sort()))}`);
  const total = [...statuses.values()].reduce((a, b) => a + b, 0);
  t.ok(total >= 2000, `${total} requests answered, all 4xx with OVH's body`);
  const fuzzable = routes.filter((r) => !['/health/live', '/health/ready', '/1.0/auth/time'].includes(r.path));
  t.strictSame(
    fuzzable.map((r) => `${r.method} ${r.path}`).filter((r) => !routesSeen.has(r)),
    [],
    'every route with an input got hostile requests',
  );
  t.strictSame(await tableCounts(ctx.handle.db), before, 'no table gained or lost a row');
  await stillServes(t, ctx.app, fixture);
});

/** Sends raw bytes on a socket and returns what came back before the server closed it (or 2 s passed). */
function rawExchange(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(2000, () => socket.end());
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('error', (err) => (data ? resolve(data) : reject(err)));
    socket.on('close', () => resolve(data));
    socket.write(bytes);
  });
}

t.test('header-level oddities on a real socket: a 4xx with OVH body each, and the server lives on', async (t) => {
  const ctx = await buildTestApp(t, { auth: true });
  const fixture = await fixtureFor(t, ctx);
  await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (ctx.app.server.address() as net.AddressInfo).port;
  const list = `/1.0/dedicatedCloud/${fixture.pathValues.serviceName}/twoFAWhitelist`;
  const bearer = `Authorization: Bearer ${fixture.apiToken}`;
  // Each on a connection of its own, closed after the answer.
  const request = (lines: string[], body = '') => `${[...lines, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`;
  const cases: Array<[string, string | Buffer, number]> = [
    ['the real token twice', request([`GET ${list} HTTP/1.1`, 'Host: x', bearer, bearer]), 400],
    ['a bogus token, then the real one', request([`GET ${list} HTTP/1.1`, 'Host: x', 'Authorization: Bearer nope', bearer]), 400],
    [
      'X-Ovh-Application twice',
      request([`GET ${list} HTTP/1.1`, 'Host: x', 'X-Ovh-Application: a', 'X-Ovh-Application: b']),
      400,
    ],
    [
      'X-Ovh-Signature twice',
      request([`GET ${list} HTTP/1.1`, 'Host: x', 'X-Ovh-Signature: $1$a', 'x-ovh-signature: $1$b']),
      400,
    ],
    [
      'an Authorization header over 16 KiB',
      request([`GET ${list} HTTP/1.1`, 'Host: x', `Authorization: Bearer ${'a'.repeat(20_000)}`]),
      431,
    ],
    [
      'headers over 16 KiB in total',
      request([`GET ${list} HTTP/1.1`, 'Host: x', ...Array.from({ length: 40 }, (_, i) => `X-Ovh-${i}: ${'b'.repeat(500)}`)]),
      431,
    ],
    ['a NUL byte in a header value', request([`GET ${list} HTTP/1.1`, 'Host: x', 'Authorization: Bearer a\0b']), 400],
    ['a header name with a space', request([`GET ${list} HTTP/1.1`, 'Host: x', 'X Ovh Application: a']), 400],
    ['a folded header line', request([`GET ${list} HTTP/1.1`, 'Host: x', 'Authorization: Bearer', ` ${fixture.apiToken}`]), 400],
    [
      'Latin-1 bytes in X-Ovh-Consumer',
      Buffer.from(request([`GET ${list} HTTP/1.1`, 'Host: x', 'X-Ovh-Application: a', 'X-Ovh-Consumer: \xe9\xff']), 'latin1'),
      403,
    ],
    ['an empty Authorization header', request([`GET ${list} HTTP/1.1`, 'Host: x', 'Authorization:']), 403],
    [
      'Content-Length and Transfer-Encoding together',
      request(
        [
          `POST ${list} HTTP/1.1`,
          'Host: x',
          bearer,
          'Content-Type: application/json',
          'Content-Length: 3',
          'Transfer-Encoding: chunked',
        ],
        '0\r\n\r\n',
      ),
      400,
    ],
    [
      'two different Content-Lengths',
      request([`POST ${list} HTTP/1.1`, 'Host: x', bearer, 'Content-Length: 2', 'Content-Length: 3'], '{}'),
      400,
    ],
    ['not HTTP at all', 'HELLO\r\n\r\n', 400],
  ];
  for (const [name, bytes, status] of cases) {
    const answer = await rawExchange(port, bytes);
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    const got = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    t.equal(got, status, `${name}: ${status}`);
    t.match(head, /content-type: application\/json/i, `${name}: JSON`);
    const parsed = JSON.parse(body.replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n$/, '')) as Record<string, unknown>;
    t.match(parsed, { class: /^Client::/, message: String }, `${name}: OVH's body`);
  }
  const after = await rawExchange(port, request([`GET ${list} HTTP/1.1`, 'Host: x', bearer]));
  t.match(after, /^HTTP\/1\.1 200 /, 'the server still serves a well-formed call');
});

t.test('regressions found by the generator: each answers a 4xx with OVH body and writes nothing', async (t) => {
  const ctx = await buildTestApp(t, { auth: true });
  const fixture = await fixtureFor(t, ctx);
  const svc = `/1.0/dedicatedCloud/${fixture.pathValues.serviceName}`;
  const auth = { authorization: `Bearer ${fixture.apiToken}` };
  const twice = (first: string, second: string): Record<string, string | string[]> => ({ authorization: [first, second] });
  const before = await tableCounts(ctx.handle.db);
  const cases: Array<[string, InjectOptions, number, RegExp]> = [
    // Ajv reads `Infinity` as an integer within any maximum: it reached PostgreSQL and answered 500.
    ['an id of Infinity', { method: 'DELETE', url: `${svc}/twoFAWhitelist/Infinity`, headers: auth }, 400, /\[id\].*finite/],
    ['an id of 1e400', { method: 'GET', url: `${svc}/task/1e400`, headers: auth }, 400, /\[taskId\].*finite/],
    ['a query limit of -Infinity', { method: 'GET', url: `${svc}/auditLog?limit=-Infinity`, headers: auth }, 400, /limit/],
    // Refused already (a body number is not coerced), kept beside the path and query cases.
    [
      'a body number of 1e400',
      {
        method: 'POST',
        url: `${svc}/changeProperties`,
        headers: { ...auth, 'content-type': 'application/json' },
        payload: '{"userSessionTimeout":1e400}',
      },
      400,
      /\[userSessionTimeout\]/,
    ],
    // Forms were parsed on every route, so a DELETE or a JSON route took an HTML form's body (sent cross-origin with no
    // preflight); only the routes that say so take forms now.
    [
      'a form body on a DELETE',
      {
        method: 'DELETE',
        url: `${svc}/twoFAWhitelist/${fixture.pathValues.id}`,
        headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'constructor',
      },
      415,
      /Content-Type/,
    ],
    [
      'a form body on a JSON route',
      {
        method: 'POST',
        url: `${svc}/twoFAWhitelist`,
        headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'ip=198.51.100.0%2F24&description=form',
      },
      415,
      /Content-Type/,
    ],
    // Two credentials are ambiguous: Node keeps the first Authorization, a proxy in front may keep the last.
    [
      'the token twice',
      { method: 'GET', url: `${svc}/twoFAWhitelist`, headers: twice(auth.authorization, auth.authorization) },
      400,
      /authorization more than once/,
    ],
    [
      'the token after a bogus one',
      { method: 'DELETE', url: `${svc}/twoFAWhitelist/${fixture.pathValues.id}`, headers: twice('Bearer x', auth.authorization) },
      400,
      /authorization more than once/,
    ],
  ];
  for (const [name, request, status, message] of cases) {
    const res = await ctx.app.inject(request);
    t.equal(res.statusCode, status, `${name}: ${status}`);
    t.match(res.json(), { class: /^Client::/, message }, `${name}: OVH body`);
  }
  t.strictSame(await tableCounts(ctx.handle.db), before, 'nothing written');
  const token = await ctx.app.inject({
    method: 'POST',
    url: '/1.0/auth/oauth2/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'grant_type=client_credentials&client_id=nobody&client_secret=x',
  });
  t.equal(token.statusCode, 401, 'the token endpoint still takes forms');
});
