import { sql, type CompiledQuery, type Kysely, type Transaction } from 'kysely';
import { prepared } from '../db/prepared.js';
import type { Database } from '../db/types.js';

/** How one kind of key counts failures. */
export interface LockPolicy {
  /** Failures allowed before attempts have to wait. */
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * Consecutive failures after which every further one locks for `hardLockMs` and is reported as an alert (NIST
   * SP 800-63B §5.2.2: no more than 100 consecutive failed attempts on one account). `Infinity` for none.
   */
  hardLimit: number;
  hardLockMs: number;
  /** A key quiet for this long starts counting again from zero; `Infinity`: only a success or an operator clears it. */
  forgetAfterMs: number;
}

/** A key's row as an attempt's admission left it (migrations/0012, 0014 `lockout_admit`). */
export interface AdmittedRow {
  key: string;
  failures: number;
  locked_until: Date | null;
  admitted: boolean;
}

/**
 * The parameters of `lockout_admit` after the statement's own: the keys (sorted, once each) and, per key, its policy;
 * then the time. `admitAttempt` and the login's one statement (secure/repository.ts `loginContext`) pass these.
 */
export function admitParameters(keys: ReadonlyArray<{ key: string; policy: LockPolicy }>, now: Date): unknown[] {
  const finite = (n: number) => (Number.isFinite(n) ? n : null);
  const column = <T>(f: (p: LockPolicy) => T) => keys.map((k) => f(k.policy));
  return [
    keys.map((k) => k.key),
    column((p) => p.freeFailures),
    column((p) => p.baseDelayMs),
    column((p) => p.maxDelayMs),
    column((p) => finite(p.hardLimit)),
    column((p) => p.hardLockMs),
    column((p) => finite(p.forgetAfterMs)),
    now.toISOString(),
  ];
}

/** The casts of `admitParameters`, in their order. */
const ADMIT_PARAMETER_TYPES = [
  'text[]',
  'integer[]',
  'double precision[]',
  'double precision[]',
  'integer[]',
  'double precision[]',
  'double precision[]',
  'timestamptz',
] as const;

/** `lockout_admit`'s arguments in a statement whose `admitParameters` begin at `$first`: `$first::text[], …`. */
export const admitArguments = (first: number): string =>
  ADMIT_PARAMETER_TYPES.map((type, i) => `$${i + first}::${type}`).join(', ');

/** Rows of `lockout_admit` as pg returns them, in key order. */
export function admittedRows(
  rows: ReadonlyArray<{ key: string; failures: number; locked_until: Date | string | null; admitted: boolean }>,
): AdmittedRow[] {
  return rows
    .map((r) => ({
      key: r.key,
      failures: r.failures,
      locked_until: r.locked_until === null ? null : new Date(r.locked_until),
      admitted: r.admitted,
    }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

let admitQuery: CompiledQuery | undefined;

/**
 * An attempt's admission (migrations/0012, 0014 `lockout_admit`): the keys' rows, in key order, as the attempt left
 * them: when one was locked, the locked ones and `admitted` false (each counted as refused); otherwise every key with
 * this attempt counted as a failure and the lock that starts if it fails.
 */
export async function admitAttempt(
  db: Kysely<Database>,
  keys: Array<{ key: string; policy: LockPolicy }>,
  now: Date,
): Promise<AdmittedRow[]> {
  admitQuery ??= prepared(
    'lockout_admit',
    sql`SELECT key, failures, locked_until, admitted
          FROM lockout_admit(${sql.raw(admitArguments(1))})`.compile(db),
  );
  const { rows } = await db.executeQuery<{
    key: string;
    failures: number;
    locked_until: Date | string | null;
    admitted: boolean;
  }>({
    ...admitQuery,
    parameters: admitParameters(keys, now),
  });
  return admittedRows(rows);
}

/**
 * Locks the rows of these keys (those that exist) in key order, as an admission locks them: a transaction that then
 * changes them in another order never waits crosswise with an admission.
 */
export async function lockInKeyOrder(trx: Transaction<Database>, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await trx.selectFrom('auth_failure').select('key').where('key', 'in', keys).orderBy('key').forUpdate().execute();
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

/**
 * An account's keys, in key order: its own, its pairs (`…@network`) and its factors (`…#factor`) with their pairs.
 * Found through `auth_failure_key_prefix_idx` (migrations/0019), not by reading every key the lockout holds.
 */
export function accountCounterKeys(db: Kysely<Database> | Transaction<Database>, accountKey: string) {
  const escaped = accountKey.replace(/[\\%_]/g, (c) => `\\${c}`);
  return db
    .selectFrom('auth_failure')
    .select('key')
    .where((eb) => eb.or([eb('key', '=', accountKey), eb('key', 'like', `${escaped}@%`), eb('key', 'like', `${escaped}#%`)]))
    .orderBy('key');
}

/**
 * Deletes an account's key and every (account, network) pair key of it. Returns how many there were. The rows are
 * locked in key order first, as an admission locks them: one DELETE takes them in the order they sit in the table, and
 * waited crosswise with an attempt at the same login.
 */
export async function deleteAccountCounters(db: Kysely<Database>, accountKey: string): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const keys = await accountCounterKeys(trx, accountKey).forUpdate().execute();
    if (keys.length === 0) return 0;
    return deleteCounters(
      trx,
      keys.map((k) => k.key),
    );
  });
}
