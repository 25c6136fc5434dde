import t from 'tap';
import { loadConfig, startupWarnings } from '../src/config.js';
import { startMetricsListener } from '../src/metrics/http.js';
import { Metrics } from '../src/metrics/registry.js';
import { sampleState } from '../src/metrics/repository.js';
import { buildTestApp, TEST_ENV } from './helpers/app.js';
import { engine, freshDatabase } from './helpers/db.js';
import { freshIp, secureKit } from './helpers/secure.js';

// /metrics in Prometheus' text format: never served without configuration, refused without the token, and its numbers
// move with what happens (requests, logins, tasks, messages, lockouts).
const TOKEN = 'metrics-token-0123456789abcdef';
const ctx = await buildTestApp(t, { env: { METRICS_TOKEN: TOKEN } });
const kit = await secureKit(t, ctx);

async function scrape(): Promise<string> {
  const res = await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}: ${res.body}`);
  return res.body;
}

/** The value of one series in Prometheus text (labels given must all match); undefined when absent. */
function valueOf(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}
const metric = async (name: string, labels: Record<string, string> = {}) => valueOf(await scrape(), name, labels) ?? 0;

t.test('without METRICS_TOKEN there is no /metrics on the API port: 404 like any unknown URL', async (t) => {
  const bare = await buildTestApp(t);
  const res = await bare.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(res.statusCode, 404);
  t.equal(res.json().class, 'Client::NotFound');
});

t.test('with METRICS_TOKEN, /metrics is refused without the token or with another one', async (t) => {
  const none = await ctx.app.inject({ method: 'GET', url: '/metrics' });
  t.equal(none.statusCode, 401);
  t.equal(none.json().class, 'Client::Unauthorized');
  t.equal(none.headers['www-authenticate'], 'Bearer realm="metrics"');
  t.notMatch(none.body, /pcc_/, 'no metric in the refusal');
  for (const header of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, TOKEN, `Basic ${TOKEN}`, 'Bearer ']) {
    const res = await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: header } });
    t.equal(res.statusCode, 401, `refused: ${header.slice(0, 12)}…`);
  }
  const ok = await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(ok.statusCode, 200);
  t.match(ok.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.match(ok.body, /# TYPE pcc_http_request_duration_seconds histogram/);
});

t.test('/metrics is not in the OpenAPI document', async (t) => {
  const doc = (await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, unknown> }>();
  t.notOk('/metrics' in doc.paths);
});

t.test('request durations are labelled by route pattern and status, never by the raw URL', async (t) => {
  const svc = await ctx.newService();
  const route = '/1.0/dedicatedCloud/:serviceName/task/:taskId';
  const before = await metric('pcc_http_request_duration_seconds_count', { route, status: '404', method: 'GET' });
  await ctx.app.inject({ method: 'GET', url: `/1.0/dedicatedCloud/${svc}/task/987654` });
  await ctx.app.inject({ method: 'GET', url: `/1.0/dedicatedCloud/${svc}/task/987655` });
  await ctx.app.inject({ method: 'GET', url: '/no/such/path-4f2a9c' });
  const text = await scrape();
  t.equal(valueOf(text, 'pcc_http_request_duration_seconds_count', { route, status: '404', method: 'GET' }), before + 2);
  t.ok((valueOf(text, 'pcc_http_request_duration_seconds_count', { route: '(unmatched)', status: '404' }) ?? 0) >= 1);
  t.notMatch(text, /987654|path-4f2a9c/, 'no raw URL in any label');
  t.notMatch(text, new RegExp(svc), 'no service name in any label');
});

t.test('logins are counted by result where the login decides', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const failedPassword = { result: 'failed', reason: 'password' };
  const [failed0, ok0, locked0] = [
    await metric('pcc_login_attempts_total', failedPassword),
    await metric('pcc_login_attempts_total', { result: 'succeeded' }),
    await metric('pcc_login_attempts_total', { result: 'locked' }),
  ];
  t.equal((await kit.login(svc, { login: person.name, password: 'Wrong-password-1!' })).statusCode, 401);
  t.equal(await metric('pcc_login_attempts_total', failedPassword), failed0 + 1, 'a wrong password counts as failed');
  t.equal((await kit.login(svc, { login: person.name, password: person.password })).statusCode, 200);
  t.equal(await metric('pcc_login_attempts_total', { result: 'succeeded' }), ok0 + 1, 'a login counts as succeeded');

  const lockouts0 = await metric('pcc_lockouts_active', { kind: 'account' });
  for (let i = 0; i < 5; i++) await kit.login(svc, { login: person.name, password: 'Wrong-password-1!' }, freshIp());
  t.equal(await metric('pcc_login_attempts_total', failedPassword), failed0 + 6);
  t.equal(await metric('pcc_lockouts_active', { kind: 'account' }), lockouts0 + 1, 'the fifth failure locks the user');
  t.equal((await kit.login(svc, { login: person.name, password: person.password }, freshIp())).statusCode, 429);
  t.equal(await metric('pcc_login_attempts_total', { result: 'locked' }), locked0 + 1, 'a refused attempt counts as locked');
  t.equal(await metric('pcc_login_attempts_total', { result: 'succeeded' }), ok0 + 1);

  ctx.clock.advance(31_000);
  t.equal(await metric('pcc_lockouts_active', { kind: 'account' }), lockouts0, 'a lock that ran out is no longer active');
});

t.test('a 2FA user without his code counts as failed, reason totpMissing', async (t) => {
  const svc = await ctx.newService();
  const validator = await kit.enable2FA(svc, await kit.validator(svc));
  const before = await metric('pcc_login_attempts_total', { result: 'failed', reason: 'totpMissing' });
  t.equal((await kit.login(svc, { login: validator.name, password: validator.password })).statusCode, 401);
  t.equal(await metric('pcc_login_attempts_total', { result: 'failed', reason: 'totpMissing' }), before + 1);
});

t.test('the task queue shows a queued task by state, with its age, until the worker applies it', async (t) => {
  const svc = await ctx.newService();
  await kit.settle();
  t.equal(await metric('pcc_task_queue_depth', { state: 'todo' }), 0, 'nothing queued');
  t.equal(await metric('pcc_task_queue_oldest_age_seconds', { state: 'todo' }), 0);
  const res = await ctx.app.inject({
    method: 'POST',
    url: `/1.0/dedicatedCloud/${svc}/twoFAWhitelist`,
    payload: { ip: '198.51.100.7/32', description: 'metrics' },
  });
  t.equal(res.statusCode, 200);
  t.equal(await metric('pcc_task_queue_depth', { state: 'todo' }), 1, 'the new task is queued');
  ctx.clock.advance(90_000);
  t.equal(await metric('pcc_task_queue_oldest_age_seconds', { state: 'todo' }), 90, 'its age follows the clock');
  await ctx.worker.drain();
  t.equal(await metric('pcc_task_queue_depth', { state: 'todo' }), 0, 'applied: no longer queued');
  t.equal(await metric('pcc_task_queue_oldest_age_seconds', { state: 'todo' }), 0);
});

t.test('the outbox backlog and send failures move as a message fails, then leaves', async (t) => {
  const svc = await ctx.newService();
  await kit.settle();
  const failures0 = await metric('pcc_outbox_send_failures_total', { channel: 'sms', given_up: 'false' });
  const sent0 = await metric('pcc_outbox_sent_total', { channel: 'sms' });
  kit.inbox.status = 500;
  t.teardown(() => void (kit.inbox.status = 200));
  const res = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user`, {
    name: 'metricsuser',
    password: 'Start-Passw0rd!x',
    phoneNumber: '+33.699887766',
  });
  t.equal(res.statusCode, 200);
  await kit.worker.drain(); // the user is created; his confirmation SMS is queued, then fails to leave
  t.equal(await metric('pcc_outbox_backlog', { state: 'pending' }), 1, 'one message waits');
  t.equal(await metric('pcc_outbox_send_failures_total', { channel: 'sms', given_up: 'false' }), failures0 + 1);
  t.equal(await metric('pcc_outbox_sent_total', { channel: 'sms' }), sent0);
  ctx.clock.advance(60_000);
  t.equal(await metric('pcc_outbox_oldest_age_seconds', { state: 'pending' }), 60);
  kit.inbox.status = 200;
  await kit.settle();
  t.equal(await metric('pcc_outbox_backlog', { state: 'pending' }), 0, 'sent: the backlog is empty');
  t.equal(await metric('pcc_outbox_sent_total', { channel: 'sms' }), sent0 + 1);
});

t.test('the database pool is reported: one session on the embedded database, the pool on PostgreSQL', async (t) => {
  const text = await scrape();
  t.equal(valueOf(text, 'pcc_db_pool_max_connections'), engine === 'pg' ? 10 : 1);
  const idle = valueOf(text, 'pcc_db_pool_connections', { state: 'idle' });
  const busy = valueOf(text, 'pcc_db_pool_connections', { state: 'busy' });
  t.ok(idle !== undefined && busy !== undefined && idle >= 0 && busy >= 0);
  t.equal(valueOf(text, 'pcc_db_pool_connections', { state: 'waiting' }), 0);
  t.equal(valueOf(text, 'pcc_metrics_database_sample_ok'), 1);
});

t.test('a scrape still answers when the database does not, without the gauges it could not read', async (t) => {
  const { handle, drop } = await freshDatabase();
  t.teardown(drop);
  const metrics = new Metrics({
    sample: () => sampleState(handle.db, new Date()),
    pool: handle.poolStats,
    now: () => new Date(),
  });
  t.equal(valueOf(await metrics.scrape(), 'pcc_metrics_database_sample_ok'), 1);
  await handle.close();
  const text = await metrics.scrape();
  t.equal(valueOf(text, 'pcc_metrics_database_sample_ok'), 0);
  t.equal(valueOf(text, 'pcc_task_queue_depth', { state: 'todo' }), undefined, 'no stale queue depth');
  t.equal(valueOf(text, 'pcc_lockouts_active', { kind: 'account' }), undefined, 'no stale lockout count');
  t.equal(valueOf(text, 'pcc_login_attempts_total', { result: 'succeeded' }), 0, 'the counters are still there');
});

t.test('two apps in one process keep their own registries', async (t) => {
  const other = await buildTestApp(t, { env: { METRICS_TOKEN: TOKEN } });
  const svc = await ctx.newService();
  for (let i = 0; i < 3; i++) await ctx.app.inject({ method: 'GET', url: `/1.0/dedicatedCloud/${svc}` });
  const res = await other.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(res.statusCode, 200);
  t.equal(valueOf(res.body, 'pcc_http_request_duration_seconds_count', { route: '/1.0/dedicatedCloud/:serviceName' }), undefined);
});

t.test('the metrics listener serves GET /metrics only, with the token when one is set', async (t) => {
  const open = await startMetricsListener({ metrics: ctx.app.services.metrics, host: '127.0.0.1', port: 0 });
  t.teardown(() => open.close());
  t.match(open.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const ok = await fetch(open.url);
  t.equal(ok.status, 200);
  t.match(await ok.text(), /pcc_task_queue_depth\{state="todo"\}/);
  const other = await fetch(open.url.replace('/metrics', '/health/live'));
  t.equal(other.status, 404);
  t.equal(((await other.json()) as { class: string }).class, 'Client::NotFound');
  t.equal((await fetch(open.url, { method: 'POST' })).status, 405);

  const guarded = await startMetricsListener({ metrics: ctx.app.services.metrics, host: '127.0.0.1', port: 0, token: TOKEN });
  t.teardown(() => guarded.close());
  t.equal((await fetch(guarded.url)).status, 401);
  t.equal((await fetch(guarded.url, { headers: { authorization: 'Bearer nope-nope-nope-nope' } })).status, 401);
  t.equal((await fetch(guarded.url, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
});

t.test('the metrics settings are validated with the rest of the configuration', async (t) => {
  const bad = (env: Record<string, string>, message: RegExp) =>
    t.throws(() => loadConfig({ ...TEST_ENV, ...env }), message, JSON.stringify(env));
  bad({ METRICS_PORT: 'nine' }, /METRICS_PORT/);
  bad({ METRICS_PORT: '70000' }, /METRICS_PORT/);
  bad({ METRICS_PORT: '3000', PORT: '3000' }, /METRICS_PORT must differ from PORT/);
  bad({ METRICS_HOST: '127.0.0.1' }, /METRICS_HOST needs METRICS_PORT/);
  bad({ METRICS_PORT: '9464', METRICS_HOST: 'metrics.example' }, /METRICS_HOST: metrics\.example is not an IP address/);
  bad({ METRICS_TOKEN: 'short' }, /METRICS_TOKEN/);
  bad({ METRICS_TOKEN: 'has a space in it, 24 chars' }, /METRICS_TOKEN/);
  const config = loadConfig({ ...TEST_ENV, METRICS_PORT: '9464' });
  t.equal(config.METRICS_PORT, 9464);
  t.same(startupWarnings(config), [], 'loopback by default: nothing to warn about');
  t.match(startupWarnings(loadConfig({ ...TEST_ENV, METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0' })), [
    /METRICS_HOST is 0\.0\.0\.0.*METRICS_TOKEN is unset/,
  ]);
  t.same(startupWarnings(loadConfig({ ...TEST_ENV, METRICS_PORT: '9464', METRICS_HOST: '::', METRICS_TOKEN: TOKEN })), []);
});
