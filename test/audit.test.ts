import t from 'tap';
import { sql } from 'kysely';
import { listEvents } from '../src/features/audit/repository.js';
import { buildTestApp } from './helpers/app.js';
import { inRolledBackTransaction, tableScans } from './helpers/db.js';

/** The audit trail: append-only in the database itself, read a page at a time, purged only by the operator. */
const ctx = await buildTestApp(t);
const { app } = ctx;
const db = ctx.handle.db;
const log = (svc: string, query = '') => app.inject({ method: 'GET', url: `/1.0/dedicatedCloud/${svc}/auditLog${query}` });

async function events(svc: string, count: number, userId: number | null = null) {
  for (let i = 0; i < count; i++) {
    await app.services.audit.write({ serviceName: svc, type: 'test.event', actor: 'tester', ip: null, userId, data: { i } });
  }
}

t.test('the database refuses UPDATE, DELETE and TRUNCATE of audit events', async (t) => {
  const svc = await ctx.newService();
  await events(svc, 1);
  for (const [what, statement] of [
    ['UPDATE', sql`UPDATE audit_event SET actor = 'someone else' WHERE service_name = ${svc}`],
    ['DELETE', sql`DELETE FROM audit_event WHERE service_name = ${svc}`],
    ['TRUNCATE', sql`TRUNCATE audit_event`],
  ] as const) {
    await t.rejects(statement.execute(db), /append-only/, `${what} is refused`);
  }
  const rows = await db.selectFrom('audit_event').select('actor').where('service_name', '=', svc).execute();
  t.strictSame(rows, [{ actor: 'tester' }], 'the event is still there, unchanged');
});

t.test('the log pages newest first: limit, then before the last id seen', async (t) => {
  const svc = await ctx.newService();
  await events(svc, 5);
  const first = (await log(svc, '?type=test.event&limit=2')).json<Array<{ id: number; data: { i: number } }>>();
  t.strictSame(
    first.map((e) => e.data.i),
    [4, 3],
  );
  const second = (await log(svc, `?type=test.event&limit=2&before=${first[1]!.id}`)).json<Array<{ data: { i: number } }>>();
  t.strictSame(
    second.map((e) => e.data.i),
    [2, 1],
  );
  const last = (await log(svc, `?type=test.event&limit=2&before=${first[1]!.id - 2}`)).json<Array<{ data: { i: number } }>>();
  t.ok(last.length <= 1, 'the last page holds what is left');
});

t.test('a page holds 100 events unless told otherwise, and never more than 1000', async (t) => {
  const svc = await ctx.newService();
  await events(svc, 101);
  t.equal((await log(svc, '?type=test.event')).json().length, 100, 'default');
  t.equal((await log(svc, '?type=test.event&limit=1000')).json().length, 101);
  for (const limit of ['1001', '0', 'x']) {
    const res = await log(svc, `?limit=${limit}`);
    t.equal(res.statusCode, 400, `limit=${limit}`);
  }
});

t.test('the log filters by user', async (t) => {
  const svc = await ctx.newService();
  await events(svc, 2, 41);
  await events(svc, 3, 42);
  const res = await log(svc, '?userId=42');
  t.equal(res.statusCode, 200);
  t.strictSame(
    res.json().map((e: { userId: number }) => e.userId),
    [42, 42, 42],
  );
});

t.test('the operator purge deletes old events only, records itself, and leaves the table append-only', async (t) => {
  const svc = await ctx.newService();
  await events(svc, 2);
  // Three events 40 days old (the database's clock dates events: the test's clock is not its).
  await sql`INSERT INTO audit_event (service_name, type, actor, data, created_at)
            SELECT ${svc}, 'test.old', 'tester', '{}'::jsonb, now() - interval '40 days' FROM generate_series(1, 3)`.execute(db);
  const cutoff = new Date(Date.now() - 30 * 24 * 3600_000);
  const deleted = await app.services.audit.purge(cutoff, 'operator');
  t.equal(deleted, 3, 'the three old events purged');
  t.equal((await log(svc, '?type=test.old')).json().length, 0);
  t.equal((await log(svc, '?type=test.event')).json().length, 2, 'the recent ones kept');
  const purge = await db.selectFrom('audit_event').selectAll().where('type', '=', 'audit.purged').execute();
  t.equal(purge.length, 1, 'the purge is recorded');
  t.match(purge[0], { actor: 'operator', data: { deleted } });
  await t.rejects(sql`DELETE FROM audit_event`.execute(db), /append-only/, 'and DELETE is refused again afterwards');
});

t.test('no purge deletes events younger than 29 days, whoever calls the database', async (t) => {
  // An attack round: a role granted DELETE could turn pcc.audit_purge on itself and delete the newest events. Events
  // now leave only through audit_delete_before (migrations/0023), which refuses a cutoff younger than 29 days.
  const svc = await ctx.newService();
  await events(svc, 2);
  await t.rejects(app.services.audit.purge(new Date(), 'operator'), /kept 29 days at least/, 'through the service');
  await t.rejects(
    sql`SELECT audit_delete_before(now() - interval '28 days', NULL)`.execute(db),
    /kept 29 days at least/,
    'through the function itself',
  );
  t.equal((await log(svc, '?type=test.event')).json().length, 2, 'both events kept');
});

t.test("the 29 days are counted in hours, whatever time zone the caller's session sets", async (t) => {
  // An attack round: `now() - interval '29 days'` was counted in the session's time zone, and a made-up zone whose
  // clock jumps ahead 167 hours in the last 29 days brought the floor down to 22 days. This zone jumps 10 days ago.
  const rule = (daysFromNow: number) => {
    const d = new Date(Date.now() + daysFromNow * 86_400_000);
    return `M${d.getUTCMonth() + 1}.${Math.ceil(d.getUTCDate() / 7)}.${d.getUTCDay()}`;
  };
  const zone = `STD0DST-167,${rule(-10)},${rule(10)}`;
  await inRolledBackTransaction(db, async (trx) => {
    await sql`SELECT set_config('TimeZone', ${zone}, true)`.execute(trx);
    await t.rejects(
      sql`SELECT audit_delete_before(now() - interval '695 hours', NULL)`.execute(trx),
      /kept 29 days at least/,
      '28 days and 23 hours ago is refused',
    );
  });
});

t.test("a service's log filtered by type reads that service's events of that type, not the whole table", async (t) => {
  // The attack: failed logins fill audit_event (no account needed: each writes login.failed into the service it
  // names); a filter by a rare type then read all of them, or every tenant's events (212 ms at 2.5 million), and a few
  // such requests a second filled the pool for the other tenants.
  const mine = await ctx.newService();
  const theirs = await ctx.newService();
  await inRolledBackTransaction(ctx.handle.db, async (trx) => {
    await sql`INSERT INTO audit_event (service_name, type, actor, data)
              SELECT CASE WHEN i % 4 = 0 THEN ${theirs} ELSE ${mine} END, 'login.failed', 'attacker', '{}'::jsonb
                FROM generate_series(1, 20000) AS i`.execute(trx);
    await sql`INSERT INTO audit_event (service_name, type, actor, data)
              VALUES (${mine}, 'user.create', 'me', '{}'::jsonb), (${mine}, 'user.delete', 'me', '{}'::jsonb)`.execute(trx);
    await sql`ANALYZE audit_event`.execute(trx);
    const read = async () => (await tableScans(trx, 'audit_event')).rowsRead;
    const before = await read();
    const prefix = await listEvents(trx, mine, { type: 'user.*', limit: 100 });
    const exact = await listEvents(trx, mine, { type: 'user.delete', limit: 100 });
    const none = await listEvents(trx, mine, { type: 'nothing', limit: 100 });
    t.ok((await read()) - before < 20, `the three pages read ${(await read()) - before} rows, not the 20,000`);
    t.same(
      [prefix.map((e) => e.type).sort(), exact.map((e) => e.type), none.length],
      [['user.create', 'user.delete'], ['user.delete'], 0],
      "only this service's events of that type",
    );
  });
});

t.test("a service's log before a date reads about the events it shows, and pages on by date", async (t) => {
  // The attack: failed logins fill audit_event; a page before a date walked the primary key from the newest event of
  // every service, skipping each newer one (648 ms at 4 million; found by an attack round).
  const mine = await ctx.newService();
  const theirs = await ctx.newService();
  await inRolledBackTransaction(ctx.handle.db, async (trx) => {
    const day = (n: number) => new Date(Date.UTC(2026, 0, n)).toISOString();
    // 10,000 lockouts of user 78 a year before, first (the lowest ids), so that half of the service's events are before the
    // date: ordered by id, the planner expects a page's worth soon, and walks the 20,000 newer ones first.
    await sql`INSERT INTO audit_event (service_name, type, actor, data, created_at, user_id)
              SELECT ${mine}, 'lockout.started', 'older', '{}'::jsonb, ${day(1)}::timestamptz - interval '1 year', 78
                FROM generate_series(1, 10000)`.execute(trx);
    // Five old events of this service, out of id order by date (the 3rd is the oldest), then 20,000 newer ones of
    // both services.
    await sql`INSERT INTO audit_event (service_name, type, actor, data, created_at)
              VALUES (${mine}, 'user.create', 'old-2', '{}'::jsonb, ${day(2)}::timestamptz),
                     (${mine}, 'user.create', 'old-4', '{}'::jsonb, ${day(4)}::timestamptz),
                     (${mine}, 'user.create', 'old-1', '{}'::jsonb, ${day(1)}::timestamptz),
                     (${mine}, 'user.create', 'old-5', '{}'::jsonb, ${day(5)}::timestamptz),
                     (${mine}, 'user.create', 'old-3', '{}'::jsonb, ${day(3)}::timestamptz)`.execute(trx);
    // The newer ones are failed logins, about a user (77).
    await sql`INSERT INTO audit_event (service_name, type, actor, data, user_id)
              SELECT CASE WHEN i % 2 = 0 THEN ${theirs} ELSE ${mine} END, 'login.failed', 'attacker', '{}'::jsonb, 77
                FROM generate_series(1, 20000) AS i`.execute(trx);
    await sql`ANALYZE audit_event`.execute(trx);
    const read = async () => (await tableScans(trx, 'audit_event')).rowsRead;
    const before = await read();
    const to = new Date(day(6));
    const first = await listEvents(trx, mine, { to, limit: 2 });
    const second = await listEvents(trx, mine, { to, limit: 2, before: Number(first.at(-1)!.id) });
    const third = await listEvents(trx, mine, { to, limit: 2, before: Number(second.at(-1)!.id) });
    const fromTo = await listEvents(trx, mine, { from: new Date(day(2)), to: new Date(day(4)), limit: 10 });
    // A type or a user with a date range, where what matches is outside the range (found by the third attack round:
    // 837 ms at 4.5 million events, walking one index and dropping what the other filter refused).
    // Before day 1: the 10,000 older lockouts, none of them a user's creation nor about user 77.
    const early = { to: new Date(day(1)), limit: 100 };
    const combined = [
      await listEvents(trx, mine, { ...early, type: 'user.create' }),
      await listEvents(trx, mine, { ...early, type: 'user.*' }),
      await listEvents(trx, mine, { ...early, userId: 77 }),
      // A user and a type, each with 10,000 events, none together: user 77's are failed logins, the lockouts are 78's.
      await listEvents(trx, mine, { userId: 77, type: 'lockout.started', limit: 100 }),
    ];
    const [other] = await listEvents(trx, theirs, { limit: 1 });
    const elsewhere = await listEvents(trx, mine, { to, limit: 2, before: Number(other!.id) });
    const rows = (await read()) - before;
    t.ok(rows < 30, `the nine pages read ${rows} rows, not the 20,000 newer`);
    t.same(
      [first, second, third].map((page) => page.map((e) => e.actor)),
      [
        ['old-5', 'old-4'],
        ['old-3', 'old-2'],
        ['old-1', 'older'],
      ],
      'newest first by date, page after page',
    );
    t.same(
      fromTo.map((e) => e.actor),
      ['old-3', 'old-2'],
      'from is inclusive, to exclusive',
    );
    t.same(elsewhere, [], "another service's event is no cursor: its date is not the caller's to learn");
    t.same(
      combined.map((page) => page.length),
      [0, 0, 0, 0],
      'a type or a user with a date range, a user with a type: nothing',
    );
  });
});
