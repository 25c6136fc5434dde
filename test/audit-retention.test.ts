import t, { type Test } from 'tap';
import { sql } from 'kysely';
import pino from 'pino';
import { loadConfig, MIN_AUDIT_DAYS } from '../src/config.js';
import { deleteEventsBefore, mayDeleteEvents } from '../src/features/audit/repository.js';
import { enqueueMessage } from '../src/notify/outbox.js';
import { buildTestApp, TEST_ENV } from './helpers/app.js';
import { secureWorker, WebhookReceiver } from './helpers/secure.js';
import { engine, inRolledBackTransaction, tableScans } from './helpers/db.js';

/**
 * The audit log's retention (`AUDIT_RETENTION_DAYS`): every refused or failed login is an event, so a flood of them
 * grows the table by as many rows, and without a retention only the operator's `audit purge` ever removes any.
 */
const DAY = 24 * 3600_000;

/**
 * A new app on a database of its own, with `AUDIT_RETENTION_DAYS` at 30 unless `env` says otherwise, and what the
 * tests need of it. Events are made in the order of their dates, as in production, where an event's id and its date
 * both come from its insertion.
 */
async function retained(t: Test, env: Record<string, string> = { AUDIT_RETENTION_DAYS: '30' }) {
  const ctx = await buildTestApp(t, { env });
  const db = ctx.handle.db;
  return {
    ctx,
    db,
    /** `count` events of type `type`, `ageMs` old (one more millisecond per event, the oldest first). */
    async events(type: string, count: number, ageMs: number) {
      const at = new Date(ctx.clock.now().getTime() - ageMs - count);
      await sql`INSERT INTO audit_event (service_name, type, actor, ip, data, created_at)
                SELECT NULL, ${type}, 'tester', NULL, jsonb_build_object('i', g),
                       ${at}::timestamptz + g * interval '1 millisecond'
                FROM generate_series(1, ${count}) g`.execute(db);
    },
    async count(type: string) {
      const row = await db
        .selectFrom('audit_event')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('type', '=', type)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    purgeRecords: () =>
      db
        .selectFrom('audit_event')
        .select(['actor', 'data'])
        .where('type', '=', 'audit.purged')
        .where('actor', '=', 'retention')
        .orderBy('id')
        .execute(),
  };
}

t.test('AUDIT_RETENTION_DAYS is 0 (every event kept) or at least 30 days', async (t) => {
  t.equal(loadConfig(TEST_ENV).AUDIT_RETENTION_DAYS, 0, 'off by default');
  t.equal(loadConfig({ ...TEST_ENV, AUDIT_RETENTION_DAYS: String(MIN_AUDIT_DAYS) }).AUDIT_RETENTION_DAYS, 30);
  t.throws(
    () => loadConfig({ ...TEST_ENV, AUDIT_RETENTION_DAYS: '7' }),
    /AUDIT_RETENTION_DAYS must be 0 \(keep every event\) or at least 30/,
  );
});

t.test("the worker's retention deletes the events older than AUDIT_RETENTION_DAYS, and records it", async (t) => {
  const { ctx, events, count, purgeRecords } = await retained(t);
  await events('test.old', 25, 31 * DAY);
  await events('test.young', 5, 29 * DAY);
  const report = await ctx.app.services.retention.purge();
  t.equal(report.auditEvents, 25, 'the 25 events older than 30 days');
  t.equal(await count('test.old'), 0);
  t.equal(await count('test.young'), 5, 'the 5 younger ones stay');
  const cutoff = new Date(ctx.clock.now().getTime() - 30 * DAY).toISOString();
  t.match(await purgeRecords(), [{ actor: 'retention', data: { deleted: 25, before: cutoff } }], 'the run is recorded');
  t.equal((await ctx.app.services.retention.purge()).auditEvents, 0, 'nothing more the next run');
  t.equal((await purgeRecords()).length, 1, 'and a run that deleted nothing is not recorded');
});

t.test('without AUDIT_RETENTION_DAYS, the retention deletes no event', async (t) => {
  const { ctx, events, count } = await retained(t, {});
  await events('test.old', 10, 400 * DAY);
  t.equal((await ctx.app.services.retention.purge()).auditEvents, 0);
  t.equal(await count('test.old'), 10, 'every event is kept');
});

t.test('a backlog goes in batches, at most so many a run, each in its own transaction', async (t) => {
  const { ctx, events, count } = await retained(t);
  await events('test.old', 1000, 40 * DAY);
  await events('test.young', 10, DAY);
  const cutoff = new Date(ctx.clock.now().getTime() - 30 * DAY);
  t.equal(await ctx.app.services.audit.expire(cutoff, { batch: 100, maxBatches: 3 }), 300, 'three batches of 100');
  t.equal(await count('test.old'), 700);
  t.equal(await ctx.app.services.audit.expire(cutoff, { batch: 300, maxBatches: 10 }), 700, 'the rest on the next run');
  t.equal(await count('test.old'), 0);
  t.equal(await count('test.young'), 10);
});

t.test('events dated ahead at the front of the table do not stop the retention', async (t) => {
  // Found by an attack round: taken by their ids, the oldest first, a run stopped at the first batch that held younger
  // events, and 10,000 events dated an hour ahead (a database clock set right after running ahead) kept every older one.
  const { ctx, events, count } = await retained(t);
  await events('test.ahead', 1000, -3600_000);
  await events('test.old', 1000, 40 * DAY);
  await events('test.young', 10, DAY);
  const cutoff = new Date(ctx.clock.now().getTime() - 30 * DAY);
  t.equal(await ctx.app.services.audit.expire(cutoff, { batch: 100, maxBatches: 20 }), 1000, 'every old event goes');
  t.equal(await count('test.old'), 0);
  t.equal(await count('test.ahead'), 1000, 'the ones dated ahead stay');
  t.equal(await count('test.young'), 10);
});

t.test('a failing retention (a role without DELETE on audit_event) stops neither the expiries nor the messages', async (t) => {
  // Found by an attack round: the README advises a role with SELECT and INSERT only on audit_event; the retention then
  // failed at each run, and the housekeeping's later steps (the queued messages) with it.
  const { ctx } = await retained(t);
  const receiver = await WebhookReceiver.start(t);
  const lines: string[] = [];
  const worker = secureWorker(ctx, receiver, {
    log: pino({ level: 'error' }, { write: (line: string) => void lines.push(line) }),
  });
  const refused = new Error('permission denied for table audit_event');
  ctx.app.services.retention.purgeIfDue = () => Promise.reject(refused);
  await ctx.handle.db
    .transaction()
    .execute((trx) =>
      enqueueMessage(
        trx,
        ctx.secretBox,
        { serviceName: null, channel: 'sms', recipient: '+33.612345678', body: 'hello', operationId: null },
        ctx.clock.now(),
      ),
    );
  await worker.drain();
  t.equal(receiver.messages.length, 1, 'the queued message left all the same');
  t.match(
    lines.join(''),
    /permission denied for table audit_event.*worker housekeeping failed/,
    "the retention's failure is logged",
  );
});

t.test('a batch reads the oldest events only, however many younger ones the table holds', async (t) => {
  const { ctx, db, events, count } = await retained(t);
  await events('test.young', 20_000, DAY);
  await inRolledBackTransaction(db, async (trx) => {
    await sql`ANALYZE audit_event`.execute(trx);
    const cutoff = new Date(ctx.clock.now().getTime() - 30 * DAY);
    const read = (await tableScans(trx, 'audit_event')).rowsRead;
    t.equal(await deleteEventsBefore(trx, cutoff, 100), 0, 'none is old enough');
    const rows = (await tableScans(trx, 'audit_event')).rowsRead - read;
    t.ok(rows <= 300, `the batch read ${rows} rows, not the 20,000`);
  });
  t.equal(await count('test.young'), 20_000);
});

t.test(
  'the start can tell when the database role may not delete audit events',
  { skip: engine !== 'pg' && 'the embedded database has one role' },
  async (t) => {
    const { ctx, db } = await retained(t);
    t.equal(await ctx.app.services.audit.mayExpire(), true, 'the test role may');
    const role = `pcc_append_only_${process.pid}`;
    await inRolledBackTransaction(db, async (trx) => {
      await sql`CREATE ROLE ${sql.id(role)} NOLOGIN`.execute(trx);
      await sql`GRANT SELECT, INSERT ON audit_event TO ${sql.id(role)}`.execute(trx);
      await sql`SET LOCAL ROLE ${sql.id(role)}`.execute(trx);
      t.equal(await mayDeleteEvents(trx), false, 'a role with SELECT and INSERT only may not');
    });
  },
);

t.test(
  'a role granted EXECUTE on audit_delete_before deletes old events through it, and nothing else',
  { skip: engine !== 'pg' && 'the embedded database has one role' },
  async (t) => {
    // An attack round: with DELETE granted (the README's advice then), the role could set pcc.audit_purge itself and
    // delete the newest events.
    const { ctx, db, events, count } = await retained(t);
    await events('test.old', 5, 40 * DAY);
    await events('test.young', 5, DAY);
    const role = `pcc_retention_${process.pid}`;
    const cutoff = new Date(ctx.clock.now().getTime() - 30 * DAY);
    await inRolledBackTransaction(db, async (trx) => {
      await sql`CREATE ROLE ${sql.id(role)} NOLOGIN`.execute(trx);
      await sql`GRANT SELECT, INSERT ON audit_event TO ${sql.id(role)}`.execute(trx);
      await sql`GRANT EXECUTE ON FUNCTION audit_delete_before(timestamptz, integer) TO ${sql.id(role)}`.execute(trx);
      await sql`SET LOCAL ROLE ${sql.id(role)}`.execute(trx);
      t.equal(await mayDeleteEvents(trx), true, 'it may run the retention');
      t.equal(await deleteEventsBefore(trx, cutoff, 100), 5, 'the old events go');
      await sql`SAVEPOINT direct`.execute(trx);
      await sql`SELECT set_config('pcc.audit_purge', 'on', true)`.execute(trx);
      await t.rejects(sql`DELETE FROM audit_event`.execute(trx), /permission denied/, 'a DELETE of its own is refused');
      await sql`ROLLBACK TO SAVEPOINT direct`.execute(trx);
      await t.rejects(
        sql`SELECT audit_delete_before(now(), NULL)`.execute(trx),
        /kept 29 days at least/,
        'and the function keeps the recent ones',
      );
    });
    t.equal(await count('test.young'), 5);
  },
);
