import http from 'node:http';
import pg from 'pg';
import t from 'tap';
import { sql } from 'kysely';
import { bearerToken, request, serverStore, serviceWithClient, startServer } from './helpers/server-process.js';

/**
 * `kill -9` of the real server process with 200 whitelist tasks in flight (150 additions, 50 removals), then a restart
 * on the same database: every task ends `done` exactly once, each applied effect is there once, and no entry is left
 * `enabling` or `removing`. Two crashes, so that each is sure to land where it should: the first process (its worker
 * off) is killed with the 200 tasks queued; the second is killed in the middle of its worker's run, once its log shows
 * ${KILL_AFTER} tasks done; the third finishes the work.
 */
const ADDS = 150;
const REMOVES = 50;
const KILL_AFTER = 60;

t.test(`kill -9 with ${ADDS + REMOVES} whitelist tasks in flight, then a restart: each task done exactly once`, async (t) => {
  const store = await serverStore(t);
  const serviceName = 'pcc-crash';
  const setup = await store.open();
  const client = await serviceWithClient(setup, serviceName, 'crash');
  await setup.close();
  // A short lease: the tasks the killed worker held are claimed again 5 s after the kill, not a minute.
  // One task at a time, so that the kill lands at a known point of the queue (lanes are tested in worker.test.ts).
  const env = {
    ...store.env,
    TASK_LEASE_SECONDS: '5',
    TASK_POLL_MS: '200',
    RATE_LIMIT_PER_MINUTE: '100000',
    TASK_CONCURRENCY: '1',
  };

  const first = await startServer(t, { ...env, WORKER_ENABLED: 'false' });
  const auth = { authorization: `Bearer ${await bearerToken(first.port, client)}` };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  t.teardown(() => agent.destroy());
  const url = `/1.0/dedicatedCloud/${serviceName}/twoFAWhitelist`;
  const adds = await Promise.all(
    Array.from({ length: ADDS }, (_, i) =>
      request(first.port, 'POST', url, {
        agent,
        headers: auth,
        body: { ip: `10.${Math.floor(i / 200)}.${i % 200}.0/24`, description: `crash ${i}` },
      }),
    ),
  );
  t.strictSame([...new Set(adds.map((a) => a.status))], [200], `the ${ADDS} additions were accepted`);
  const list = await request(first.port, 'GET', url, { headers: auth });
  const ids = (JSON.parse(list.body) as number[]).sort((a, b) => a - b);
  t.equal(ids.length, ADDS);
  const removed = ids.slice(0, REMOVES);
  const removes = await Promise.all(removed.map((id) => request(first.port, 'DELETE', `${url}/${id}`, { agent, headers: auth })));
  t.strictSame([...new Set(removes.map((a) => a.status))], [200], `the ${REMOVES} removals were accepted`);
  const queued = await request(first.port, 'GET', `/1.0/dedicatedCloud/${serviceName}/task?state=todo`, { headers: auth });
  t.equal((JSON.parse(queued.body) as number[]).length, ADDS + REMOVES, 'all 200 tasks are queued at the kill');
  first.child.kill('SIGKILL');
  t.equal(await first.exited, 'SIGKILL', 'the first process died by SIGKILL, its 200 tasks queued');
  agent.destroy();

  let killedAt: Date;
  let doneAtKill = 0;
  if (store.databaseUrl) {
    // PostgreSQL: the test holds a lock on the entry of the KILL_AFTER-th task, so the second process's worker does the
    // tasks before it, then blocks inside that task's transaction (claimed, `doing`). It is killed right there.
    const blocker = new pg.Client({ connectionString: store.databaseUrl });
    await blocker.connect();
    t.teardown(() => blocker.end().catch(() => undefined));
    const { rows } = await blocker.query<{ task_id: string; whitelist_id: number }>(
      `SELECT task_id, (payload->>'whitelistId')::int AS whitelist_id FROM task ORDER BY execution_date, task_id OFFSET $1 LIMIT 1`,
      [KILL_AFTER],
    );
    await blocker.query('BEGIN');
    await blocker.query('SELECT 1 FROM two_fa_whitelist WHERE id = $1 FOR UPDATE', [rows[0]!.whitelist_id]);
    const second = await startServer(t, env);
    const waiting = async () => {
      // Inside its transaction, a session sees one snapshot of the statistics unless it drops it: a fresh look each time.
      await blocker.query('SELECT pg_stat_clear_snapshot()');
      const res = await blocker.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      return Number(res.rows[0].n) > 0;
    };
    const deadline = Date.now() + 30_000;
    while (!(await waiting()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.ok(await waiting(), `the second worker is inside task ${rows[0]!.task_id}'s transaction, blocked`);
    second.child.kill('SIGKILL');
    killedAt = new Date();
    t.equal(await second.exited, 'SIGKILL', 'the second process died by SIGKILL in the middle of a task');
    await blocker.query('ROLLBACK');
    const doing = await blocker.query(`SELECT state, count(*)::int AS n FROM task GROUP BY state ORDER BY state`);
    const states = Object.fromEntries(doing.rows.map((r: { state: string; n: number }) => [r.state, r.n]));
    t.comment(`at the second kill: ${JSON.stringify(states)}`);
    // The worker commits a lane's tasks together: the blocked task's group, done before it in the same transaction,
    // died with it; everything committed before that group stays done.
    doneAtKill = states.done ?? 0;
    t.ok(
      doneAtKill <= KILL_AFTER && doneAtKill > 0,
      `${doneAtKill} tasks were committed before the kill, none after the blocked one`,
    );
  } else {
    // The embedded database is one process's: nothing outside can hold the worker. The second process is killed as
    // soon as it says it listens, its worker just started on the queue.
    const second = await startServer(t, env);
    second.child.kill('SIGKILL');
    killedAt = new Date();
    t.equal(await second.exited, 'SIGKILL', 'the second process died by SIGKILL as its worker started');
  }

  const third = await startServer(t, env);
  const restartedAt = Date.now();
  const auth3 = { authorization: `Bearer ${await bearerToken(third.port, client)}` };
  const deadline = Date.now() + 60_000;
  let done = 0;
  while (Date.now() < deadline) {
    const res = await request(third.port, 'GET', `/1.0/dedicatedCloud/${serviceName}/task?state=done`, { headers: auth3 });
    done = (JSON.parse(res.body) as number[]).length;
    if (done >= ADDS + REMOVES) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const recoveredMs = Date.now() - restartedAt;
  t.equal(done, ADDS + REMOVES, `all ${ADDS + REMOVES} tasks done after the restart (${recoveredMs} ms)`);
  third.child.kill('SIGTERM');
  t.equal(await third.exited, 0, 'the third process stopped cleanly');

  const handle = await store.open();
  t.teardown(() => handle.close());
  const { db } = handle;
  const tasks = await db.selectFrom('task').select(['task_id', 'name', 'state', 'attempts', 'end_date', 'payload']).execute();
  t.equal(tasks.length, ADDS + REMOVES, 'one task per accepted request, none lost, none duplicated');
  t.strictSame([...new Set(tasks.map((x) => x.state))], ['done'], 'every task is done');
  const finishedAfter = tasks.filter((x) => x.end_date !== null && x.end_date >= killedAt).length;
  const interrupted = tasks.filter((x) => x.attempts > 1).length;
  t.comment(`at the second kill ${finishedAfter} of ${tasks.length} tasks were not done yet; ${interrupted} claimed twice`);
  if (store.databaseUrl) {
    t.equal(finishedAfter, ADDS + REMOVES - doneAtKill, 'every task not committed at the kill was done after it');
    t.ok(interrupted >= 1, 'the task killed in its transaction was claimed again, and applied once');
  }
  const perEntry = new Map<string, number>();
  for (const task of tasks) {
    const key = `${task.name}:${String((task.payload as { whitelistId?: number }).whitelistId)}`;
    perEntry.set(key, (perEntry.get(key) ?? 0) + 1);
  }
  t.equal(perEntry.size, ADDS + REMOVES, 'one task per entry and action');
  t.ok(
    [...perEntry.values()].every((n) => n === 1),
    'no task twice for one entry and action',
  );

  const entries = await db.selectFrom('two_fa_whitelist').select(['id', 'state']).orderBy('id').execute();
  const states: Record<string, number> = {};
  for (const e of entries) states[e.state] = (states[e.state] ?? 0) + 1;
  t.strictSame(states, { removed: REMOVES, enabled: ADDS - REMOVES }, 'no entry left enabling or removing');
  t.strictSame(
    entries.filter((e) => e.state === 'removed').map((e) => e.id),
    removed,
    'the removed entries are those whose removal was asked',
  );
  const { rows } = await sql<{ type: string; n: number }>`
    SELECT type, count(*)::int AS n FROM audit_event WHERE service_name = ${serviceName} GROUP BY type ORDER BY type`.execute(db);
  t.strictSame(
    Object.fromEntries(rows.map((r) => [r.type, Number(r.n)])),
    { 'twoFAWhitelist.add': ADDS, 'twoFAWhitelist.remove': REMOVES },
    'one audit event per change, none repeated',
  );
});
