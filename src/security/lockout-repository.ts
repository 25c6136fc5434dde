import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/types.js';

/** Creates the keys' rows if new and locks them, in the order given, until the transaction ends. */
export async function lockCounters(trx: Transaction<Database>, keys: string[], now: Date) {
  return trx
    .insertInto('auth_failure')
    .values(keys.map((key) => ({ key, failures: 0, last_failure_at: now, locked_until: null })))
    .onConflict((oc) => oc.column('key').doUpdateSet({ key: (eb) => eb.ref('excluded.key') }))
    .returning(['key', 'failures', 'last_failure_at', 'locked_until'])
    .execute();
}

export async function countRefused(trx: Transaction<Database>, keys: string[]): Promise<void> {
  await trx
    .updateTable('auth_failure')
    .set((eb) => ({ refused: eb('refused', '+', 1) }))
    .where('key', 'in', keys)
    .execute();
}

/** Writes each key's new failure count and lock, in one statement. */
export async function setCounters(
  trx: Transaction<Database>,
  counters: Array<{ key: string; failures: number; lockedUntil: Date | null }>,
  now: Date,
): Promise<void> {
  await sql`UPDATE auth_failure AS f
            SET failures = v.failures, last_failure_at = ${now}, locked_until = v.locked_until
            FROM (VALUES ${sql.join(counters.map((c) => sql`(${c.key}, ${c.failures}::integer, ${c.lockedUntil}::timestamptz)`))})
              AS v(key, failures, locked_until)
            WHERE f.key = v.key`.execute(trx);
}

export async function deleteCounters(db: Kysely<Database> | Transaction<Database>, keys: string[]): Promise<number> {
  const result = await db.deleteFrom('auth_failure').where('key', 'in', keys).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Gives one failure back to a key, and drops the lock `own` if it is still the key's lock. */
export async function refundFailure(trx: Transaction<Database>, key: string, own: Date | null): Promise<void> {
  await trx
    .updateTable('auth_failure')
    .set((eb) => ({
      failures: sql<number>`greatest(${eb.ref('failures')} - 1, 0)`,
      locked_until: sql<Date | null>`CASE WHEN locked_until = ${own}::timestamptz THEN NULL ELSE locked_until END`,
    }))
    .where('key', '=', key)
    .execute();
}

/** The locks still running among these keys. */
export async function runningLocks(db: Kysely<Database>, keys: string[], now: Date) {
  return db.selectFrom('auth_failure').select('locked_until').where('key', 'in', keys).where('locked_until', '>', now).execute();
}

/** Deletes an account's key and every (account, network) pair key of it. Returns how many there were. */
export async function deleteAccountCounters(db: Kysely<Database>, accountKey: string): Promise<number> {
  const escaped = accountKey.replace(/[\\%_]/g, (c) => `\\${c}`);
  const result = await db
    .deleteFrom('auth_failure')
    // The account, its pairs (`…@network`), its factors (`…#factor`) and their pairs.
    .where((eb) => eb.or([eb('key', '=', accountKey), eb('key', 'like', `${escaped}@%`), eb('key', 'like', `${escaped}#%`)]))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
