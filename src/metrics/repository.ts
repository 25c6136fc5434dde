import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/types.js';

/** One row of the scrape's sample: how many rows of one kind are in one state, and the oldest one's date. */
export interface SampleRow {
  source: 'task' | 'outbox' | 'lockout';
  label: string;
  n: number;
  oldest: Date | null;
}

/**
 * What /metrics reads from the database at each scrape, in one round trip: the open tasks by state (their oldest
 * execution date), the unsent messages by state (their oldest creation), and the keys locked at `now` by kind. Each
 * part runs on a partial index (migration 0009), so the cost follows what is open, not the history.
 */
export async function sampleState(db: Kysely<Database>, now: Date): Promise<SampleRow[]> {
  const { rows } = await sql<SampleRow>`
    SELECT 'task' AS source, state AS label, count(*)::int AS n, min(execution_date) AS oldest
      FROM task WHERE state NOT IN ('done', 'canceled') GROUP BY state
    UNION ALL
    SELECT 'outbox', state, count(*)::int, min(created_at)
      FROM outbox WHERE state <> 'sent' GROUP BY state
    UNION ALL
    SELECT 'lockout', kind, count(*)::int, NULL::timestamptz
      FROM (SELECT CASE WHEN key LIKE 'ip:%' THEN 'network' WHEN key LIKE '%@%' THEN 'pair' ELSE 'account' END AS kind
              FROM auth_failure WHERE locked_until IS NOT NULL AND locked_until > ${now}) AS locked
      GROUP BY kind`.execute(db);
  return rows.map((r) => ({ ...r, n: Number(r.n), oldest: r.oldest === null ? null : new Date(r.oldest) }));
}
