import { setImmediate as nextRound } from 'node:timers/promises';
import { sql } from 'kysely';
import t from 'tap';
import { BatchedLookup } from '../src/db/batched-lookup.js';
import { prepared } from '../src/db/prepared.js';
import { findEntries } from '../src/features/whitelist/repository.js';
import { buildTestApp } from './helpers/app.js';
import { addEntryOk } from './helpers/api.js';

t.test('reads made in one round of the event loop share one query', async (t) => {
  const calls: number[][] = [];
  const lookup = new BatchedLookup<number, string>(async (keys) => {
    calls.push(keys);
    return new Map(keys.filter((k) => k !== 404).map((k) => [k, `row ${k}`]));
  });
  const answers = await Promise.all([1, 2, 2, 404, 3].map((k) => lookup.load(k)));
  t.same(answers, ['row 1', 'row 2', 'row 2', undefined, 'row 3'], 'each load gets its own row, or none');
  t.same(calls, [[1, 2, 404, 3]], 'one query, each key once');

  await lookup.load(7);
  await nextRound();
  await lookup.load(8);
  t.same(calls.slice(1), [[7], [8]], 'reads of different rounds are not held back for each other');
});

t.test('a batch is split at its maximum, and a failed query fails every load of its batch', async (t) => {
  const calls: number[][] = [];
  const lookup = new BatchedLookup<number, number>(async (keys) => {
    calls.push(keys);
    if (keys.includes(5)) throw new Error('database unavailable');
    return new Map(keys.map((k) => [k, k * 10]));
  }, 3);
  const settled = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((k) => lookup.load(k)));
  t.same(calls, [
    [1, 2, 3],
    [4, 5, 6],
  ]);
  t.same(
    settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
    [10, 20, 30, 'database unavailable', 'database unavailable', 'database unavailable'],
  );
});

t.test('a prepared statement names its columns, and one text has one name', async (t) => {
  const query = (sql: string) => ({ sql, parameters: [], query: {} as never, queryId: {} as never });
  t.throws(() => prepared('bad', query('select * from service where service_name = $1')), /must name its columns/);
  const text = 'select service_name from service where service_name = $1 and 1 = 1';
  t.doesNotThrow(() => prepared('probe_a', query(text)));
  t.doesNotThrow(() => prepared('probe_a', query(text)), 'registered again under its name: the same statement');
  t.throws(() => prepared('probe_b', query(text)), /already prepared as pcc_probe_a/);
  t.throws(() => prepared('probe_a', query(`${text} and 2 = 2`)), /another statement is already prepared under this name/);
});

t.test('GET …/twoFAWhitelist/{id}: entries of another service stay hidden, and PostgreSQL runs the read prepared', async (t) => {
  const ctx = await buildTestApp(t);
  const a = await ctx.newService();
  const b = await ctx.newService();
  const entryOfA = await addEntryOk(ctx.app, a, '198.51.100.0/24');
  const entryOfB = await addEntryOk(ctx.app, b, '198.51.100.0/24');
  // Both reads arrive together and share one query: each still sees only its own service's entry.
  const [own, other] = await Promise.all([
    ctx.app.inject({ method: 'GET', url: `/1.0/dedicatedCloud/${a}/twoFAWhitelist/${entryOfA.id}` }),
    ctx.app.inject({ method: 'GET', url: `/1.0/dedicatedCloud/${a}/twoFAWhitelist/${entryOfB.id}` }),
  ]);
  t.equal(own.statusCode, 200);
  t.match(own.json(), { id: entryOfA.id });
  t.equal(other.statusCode, 404, "another service's entry answers as one that does not exist");

  if (ctx.handle.kind !== 'pg') return;
  const names = await ctx.handle.db.transaction().execute(async (trx) => {
    await findEntries(trx, [entryOfA.id]);
    const { rows } = await sql<{ name: string }>`SELECT name FROM pg_prepared_statements`.execute(trx);
    return rows.map((r) => r.name);
  });
  t.ok(names.includes('pcc_find_whitelist_entries'), `prepared on the connection: ${names.join(', ')}`);
});
