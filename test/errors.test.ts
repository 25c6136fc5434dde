import t from 'tap';
import { buildTestApp } from './helpers/app.js';
import { whitelistUrl } from './helpers/api.js';

const SECRET_TEXT = 'connection to db-secret.internal:5432 refused for user pcc_admin';

// One app for the file, with a route that fails the way a bug would. It must be added before the app is ready.
const ctx = await buildTestApp(t);
const { app } = ctx;
app.get('/1.0/test/explode', async () => {
  throw new Error(SECRET_TEXT);
});
const svc = await ctx.newService();

const queryIdOf = (res: { headers: Record<string, unknown> }) => res.headers['x-ovh-queryid'];

const responses = {
  200: () => app.inject({ method: 'GET', url: whitelistUrl(svc) }),
  400: () => app.inject({ method: 'POST', url: whitelistUrl(svc), payload: { description: 'no ip' } }),
  404: () => app.inject({ method: 'GET', url: '/1.0/no/such/route?x=1' }),
  413: () =>
    app.inject({
      method: 'POST',
      url: whitelistUrl(svc),
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ ip: '203.0.113.0/24', description: 'x'.repeat(ctx.config.BODY_LIMIT) }),
    }),
  500: () => app.inject({ method: 'GET', url: '/1.0/test/explode' }),
};

for (const [status, call] of Object.entries(responses)) {
  t.test(`a ${status} response carries an X-Ovh-QueryID`, async (t) => {
    const res = await call();
    t.equal(res.statusCode, Number(status));
    t.match(queryIdOf(res), /^PCC\.[A-Za-z0-9-]+\.[0-9a-f]+\.[0-9a-f]{12}$/);
  });
}

t.test('every response has its own X-Ovh-QueryID', async (t) => {
  const calls = [...Object.values(responses), ...Object.values(responses)];
  const ids = (await Promise.all(calls.map((call) => call()))).map(queryIdOf);
  t.equal(new Set(ids).size, ids.length);
});

t.test('a query id sent by the client is not echoed', async (t) => {
  const res = await app.inject({ method: 'GET', url: whitelistUrl(svc), headers: { 'x-ovh-queryid': 'EU.forged.1' } });
  t.not(queryIdOf(res), 'EU.forged.1');
  t.match(queryIdOf(res), /^PCC\./);
});

t.test('a body over BODY_LIMIT answers 413 with an OVH body and creates nothing', async (t) => {
  const res = await responses[413]();
  t.equal(res.statusCode, 413);
  t.strictSame(res.json(), {
    class: 'Client::PayloadTooLarge',
    message: `Request body is larger than ${ctx.config.BODY_LIMIT} bytes`,
  });
  const tasks = await ctx.handle.db.selectFrom('task').select('task_id').where('service_name', '=', svc).execute();
  t.equal(tasks.length, 0);
});

t.test('a body that is not JSON answers 400 with an OVH body', async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: whitelistUrl(svc),
    headers: { 'content-type': 'application/json' },
    payload: '{"ip": "203.0.113.0/24", "description": ',
  });
  t.equal(res.statusCode, 400);
  t.strictSame(res.json(), { class: 'Client::BadRequest', message: 'Body is not valid JSON' });
});

t.test('an unknown route answers 404 Client::NotFound naming the path, without its query string', async (t) => {
  const res = await responses[404]();
  t.equal(res.statusCode, 404);
  t.strictSame(res.json(), { class: 'Client::NotFound', message: 'Got an invalid (or empty) URL: GET /1.0/no/such/route' });
});

t.test('an unexpected error answers a bare 500 that shows no internals', async (t) => {
  const res = await responses[500]();
  t.equal(res.statusCode, 500);
  const body = res.json();
  t.strictSame(Object.keys(body).sort(), ['class', 'message']);
  t.equal(body.class, 'Server::InternalServerError');
  t.notMatch(res.body, /db-secret|pcc_admin|refused/, 'not the original message');
  t.notMatch(res.body, /at .*\.(ts|js):\d+|node_modules|stack/i, 'no stack');
  t.match(body.message, queryIdOf(res) as string, 'the query id to quote to support');
});

t.test('a database failure answers a bare 500 that shows no internals', async (t) => {
  const broken = await buildTestApp(t);
  const brokenSvc = await broken.newService();
  await broken.app.ready();
  await broken.handle.close();
  const res = await broken.app.inject({
    method: 'POST',
    url: whitelistUrl(brokenSvc),
    payload: { ip: '203.0.113.0/24', description: 'x' },
  });
  t.equal(res.statusCode, 500);
  t.strictSame(Object.keys(res.json()).sort(), ['class', 'message']);
  t.equal(res.json().class, 'Server::InternalServerError');
  t.notMatch(res.body, /pool|pglite|closed|after calling end|kysely|select|stack/i);
});
