import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import pg from 'pg';
import { buildApp, operatorAccess } from '../src/app.js';
import { buildWorker } from '../src/composition.js';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { isDatabaseUnavailable } from '../src/db/unavailable.js';
import { SecretBox } from '../src/security/secret-box.js';
import { TEST_ENV, TestClock, silentLog } from './helpers/app.js';
import { request, type HttpAnswer } from './helpers/server-process.js';

/**
 * A database outage under load, on a PostgreSQL of the test's own (initdb in a temporary folder, pg_ctl on a free
 * port; as the `postgres` user when the test runs as root). While it is down every API call answers 503 with OVH's
 * body within a bound and /health/ready fails; once it is back the same app serves again, without a restart, and every
 * task accepted is done exactly once. Skipped, saying so, only when PostgreSQL's programs are not installed.
 */
const BIN = process.env.PG_BIN || '/usr/lib/postgresql/15/bin';
const missing = ['initdb', 'pg_ctl', 'postgres'].filter((p) => !fs.existsSync(path.join(BIN, p)));
/** The longest an answer may take while the database is down: the pool's connection timeout (5 s) and a margin. */
const BOUND_MS = 8000;

t.test(
  'the database stops under load: 503 with OVH body, readiness fails; it restarts: the app recovers, no task lost or doubled',
  { skip: missing.length ? `PostgreSQL programs missing in ${BIN}: ${missing.join(', ')}` : false },
  async (t) => {
    const pgServer = await ownPostgres(t);
    const handle = await openDatabase({ databaseUrl: pgServer.url, log: silentLog });
    await migrateToLatest(handle.db);
    const config = loadConfig({ ...TEST_ENV, RATE_LIMIT_PER_MINUTE: '1000000', TASK_LEASE_SECONDS: '5' });
    const clock = new TestClock();
    const box = new SecretBox([{ id: 'test', key: randomBytes(32) }]);
    const app = await buildApp({ handle, config, clock, secretBox: box });
    const worker = buildWorker({
      handle,
      services: app.services,
      box,
      clock,
      config: { TASK_LEASE_SECONDS: 5, TASK_POLL_MS: 100 },
      log: silentLog,
      workerId: 'outage-worker',
    });
    t.teardown(async () => {
      await worker.stop();
      await app.close();
      await handle.close().catch(() => undefined);
    });
    const serviceName = 'pcc-outage';
    await app.services.services.create(serviceName, 'outage');
    const client = await app.services.auth.createOauthClient('outage');
    await app.listen({ port: 0, host: '127.0.0.1' });
    await worker.start();
    const port = (app.server.address() as AddressInfo).port;
    const token = await request(port, 'POST', '/1.0/auth/oauth2/token', {
      body: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret },
    });
    const auth = { authorization: `Bearer ${(JSON.parse(token.body) as { access_token: string }).access_token}` };
    const url = `/1.0/dedicatedCloud/${serviceName}/twoFAWhitelist`;

    // Load: 8 callers, each adding entries and reading the list, until told to stop.
    type Call = HttpAnswer & { at: number; kind: string; taskId?: number };
    const calls: Call[] = [];
    let next = 0;
    let loading = true;
    const callers = Array.from({ length: 8 }, async () => {
      while (loading) {
        const i = next++;
        const at = Date.now();
        const kind = i % 2 ? 'add' : 'list';
        const res = await (
          kind === 'add'
            ? request(port, 'POST', url, {
                headers: auth,
                body: { ip: `10.${Math.floor(i / 250) % 250}.${i % 250}.0/24`, description: `load ${i}` },
                timeoutMs: 30_000,
              })
            : request(port, 'GET', url, { headers: auth, timeoutMs: 30_000 })
        ).catch((err: Error) => ({ status: 0, body: err.message, ms: Date.now() - at }));
        const taskId = kind === 'add' && res.status === 200 ? (JSON.parse(res.body) as { taskId: number }).taskId : undefined;
        calls.push({ ...res, at, kind, ...(taskId ? { taskId } : {}) });
        if (res.status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
    });
    const ready = () => request(port, 'GET', '/health/ready', { timeoutMs: 10_000 });
    const until = async (what: string, predicate: () => Promise<boolean> | boolean, ms = 30_000) => {
      const deadline = Date.now() + ms;
      while (!(await predicate())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until('calls before the outage', () => calls.filter((c) => c.status === 200).length >= 40);

    const stoppedAt = Date.now();
    pgServer.stop();
    const stopMs = Date.now() - stoppedAt;
    await until('calls during the outage', () => calls.filter((c) => c.at > stoppedAt + stopMs).length >= 40);
    const readyDown = await ready();
    t.equal(readyDown.status, 503, `/health/ready answers 503 while the database is down (in ${readyDown.ms} ms)`);
    // Settle: the answers of the calls made while it was down.
    const downUntil = Date.now();
    await until('answers of the outage', () => calls.filter((c) => c.at > downUntil).length >= 8);
    const during = calls.filter((c) => c.at > stoppedAt + stopMs && c.at < downUntil);

    const restartAt = Date.now();
    pgServer.start();
    await until('readiness after the restart', async () => (await ready()).status === 200, 60_000);
    const recoveredMs = Date.now() - restartAt;
    await until(
      'calls after the recovery',
      () => calls.filter((c) => c.at > restartAt + recoveredMs && c.status === 200).length >= 20,
    );
    loading = false;
    await Promise.all(callers);

    const statuses = (list: Call[]) => {
      const out: Record<string, number> = {};
      for (const c of list) out[c.status] = (out[c.status] ?? 0) + 1;
      return out;
    };
    t.comment(
      `${calls.length} calls; the stop took ${stopMs} ms; while down: ${JSON.stringify(statuses(during))}, ` +
        `slowest ${Math.max(...during.map((c) => c.ms))} ms; ready again ${recoveredMs} ms after the start`,
    );
    t.ok(during.length >= 40, `${during.length} calls while the database was down`);
    t.strictSame(Object.keys(statuses(during)), ['503'], 'every call while it was down answered 503');
    t.ok(
      during.every((c) => c.ms < BOUND_MS),
      `each within ${BOUND_MS} ms (slowest ${Math.max(...during.map((c) => c.ms))} ms)`,
    );
    const body = JSON.parse(during[0]!.body) as Record<string, unknown>;
    t.match(body, { class: 'Server::ServiceUnavailable', message: /temporarily unavailable/ }, "with OVH's error body");
    t.strictSame(Object.keys(body).sort(), ['class', 'message']);
    t.equal(during[0]!.headers?.['retry-after'], '5', 'and Retry-After');
    t.ok(
      calls.every((c) => c.status === 200 || c.status === 503),
      `no call answered anything but 200 or 503 (${JSON.stringify(statuses(calls))})`,
    );
    const after = calls.filter((c) => c.at > restartAt + recoveredMs);
    t.strictSame(Object.keys(statuses(after)), ['200'], 'after the recovery every call answers 200 again, same app');

    // The worker lived through it: every accepted addition is applied, once. A task it held when the database went
    // away stays `doing` until its lease ends: the test's clock moves past it.
    clock.advance(10_000);
    worker.wake();
    const accepted = calls.filter((c) => c.taskId !== undefined).map((c) => c.taskId!);
    await until(
      'every task done',
      async () => (await handle.db.selectFrom('task').select('task_id').where('state', '!=', 'done').execute()).length === 0,
    );
    const tasks = await handle.db.selectFrom('task').select(['task_id', 'state', 'payload', 'attempts']).execute();
    const taskIds = new Set(tasks.map((x) => Number(x.task_id)));
    t.ok(
      accepted.every((id) => taskIds.has(id)),
      `each of the ${accepted.length} accepted additions has its task`,
    );
    t.strictSame([...new Set(tasks.map((x) => x.state))], ['done'], `all ${tasks.length} tasks done`);
    const entries = await handle.db.selectFrom('two_fa_whitelist').select(['id', 'state']).execute();
    t.equal(entries.length, tasks.length, 'one entry per task: none applied twice, none without its task');
    t.strictSame([...new Set(entries.map((e) => e.state))], ['enabled'], 'every entry enabled');
    const events = await handle.db.selectFrom('audit_event').select('id').where('type', '=', 'twoFAWhitelist.add').execute();
    t.equal(events.length, tasks.length, 'one audit event per addition');
  },
);

t.test(
  'a connection cut in the middle of a task: the task stays doing, is claimed again after its lease, and is applied once',
  { skip: missing.length ? `PostgreSQL programs missing in ${BIN}: ${missing.join(', ')}` : false },
  async (t) => {
    const pgServer = await ownPostgres(t);
    const handle = await openDatabase({ databaseUrl: pgServer.url, log: silentLog });
    t.teardown(() => handle.close());
    await migrateToLatest(handle.db);
    const config = loadConfig({ ...TEST_ENV, TASK_LEASE_SECONDS: '5' });
    const clock = new TestClock();
    const box = new SecretBox([{ id: 'test', key: randomBytes(32) }]);
    const app = await buildApp({ handle, config, clock, secretBox: box, authenticate: operatorAccess });
    t.teardown(() => app.close());
    const worker = buildWorker({
      handle,
      services: app.services,
      box,
      clock,
      config: { TASK_LEASE_SECONDS: 5, TASK_POLL_MS: 60_000 },
      log: silentLog,
      workerId: 'cut-worker',
    });
    await app.services.services.create('pcc-cut', 'cut');
    const res = await app.inject({
      method: 'POST',
      url: '/1.0/dedicatedCloud/pcc-cut/twoFAWhitelist',
      payload: { ip: '198.51.100.0/24', description: 'cut' },
    });
    const { taskId } = res.json<{ taskId: number }>();
    const [entry] = await handle.db.selectFrom('two_fa_whitelist').select('id').execute();

    // The test holds the entry's row: the worker claims the task, then waits inside its transaction; its connection is
    // then cut by the server (pg_terminate_backend, as a failover or a connection killer does) while the database
    // stays up.
    const blocker = new pg.Client({ connectionString: pgServer.url });
    await blocker.connect();
    t.teardown(() => blocker.end());
    await blocker.query('BEGIN');
    await blocker.query('SELECT 1 FROM two_fa_whitelist WHERE id = $1 FOR UPDATE', [entry!.id]);
    const pass = worker.drain().then(
      () => undefined,
      (err: unknown) => err,
    );
    let pid: number | undefined;
    const deadline = Date.now() + 30_000;
    while (pid === undefined && Date.now() < deadline) {
      const { rows } = await blocker.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'pcc-2fa'`,
      );
      pid = rows[0]?.pid;
      if (pid === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    t.ok(pid, 'the worker waits inside the task’s transaction');
    await blocker.query('SELECT pg_terminate_backend($1)', [pid]);
    const err = await pass;
    t.ok(isDatabaseUnavailable(err), `the pass stopped on the lost connection (${String((err as Error)?.message)})`);
    await blocker.query('ROLLBACK');

    const cut = await handle.db.selectFrom('task').select(['state', 'attempts']).where('task_id', '=', taskId).executeTakeFirst();
    t.match(cut, { state: 'doing', attempts: 1 }, 'the task is not marked error: it waits for its lease to end');
    clock.advance(6_000);
    await worker.drain();
    const task = await handle.db
      .selectFrom('task')
      .select(['state', 'attempts'])
      .where('task_id', '=', taskId)
      .executeTakeFirst();
    t.match(task, { state: 'done', attempts: 2 }, 'claimed again after the lease, and done');
    const entries = await handle.db.selectFrom('two_fa_whitelist').select('state').execute();
    t.strictSame(entries, [{ state: 'enabled' }], 'the entry is enabled, once');
  },
);

/** A PostgreSQL 15 of the test's own, in a temporary folder, on a free port; stopped and removed when the test ends. */
async function ownPostgres(t: Test) {
  const asRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcc-2fa-pg-'));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    fs.chownSync(dir, uid, gid);
  }
  // PostgreSQL refuses to run as root: its programs run as `postgres` then.
  const run = (program: string, args: string[]) =>
    execFileSync(
      asRoot ? 'runuser' : path.join(BIN, program),
      asRoot ? ['-u', 'postgres', '--', path.join(BIN, program), ...args] : args,
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      },
    );
  const port = await freePort();
  const data = path.join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  // fsync off: the test's machine does not crash, only the server stops, and its writes are in the OS's cache by then.
  // synchronous_commit stays on: an answered commit must survive the immediate stop.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const server = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: () => run('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']),
    // `immediate`: the server goes at once, connections cut, as in a crash or a failover.
    stop: () => run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']),
  };
  server.start();
  t.teardown(() => {
    try {
      server.stop();
    } catch {
      // already stopped
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
