import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/types.js';

const count = (result: { numDeletedRows: bigint }) => Number(result.numDeletedRows);

/** Failure counters nobody is locked by and nobody failed on for `idleBefore`, and refunded ones after a day. */
export async function purgeAuthFailures(db: Kysely<Database>, now: Date, idleBefore: Date, zeroBefore: Date) {
  const result = await db
    .deleteFrom('auth_failure')
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
    .where((eb) =>
      eb.or([eb('last_failure_at', '<', idleBefore), eb.and([eb('failures', '=', 0), eb('last_failure_at', '<', zeroBefore)])]),
    )
    .executeTakeFirst();
  return count(result);
}

/** Consumer keys that were asked for and never validated, once their validation link is long dead. */
export async function purgePendingCredentials(db: Kysely<Database>, before: Date) {
  const result = await db
    .deleteFrom('credential')
    .where('state', '=', 'pendingValidation')
    .where('validation_expires_at', '<', before)
    .executeTakeFirst();
  return count(result);
}

export async function purgeExpiredOauthTokens(db: Kysely<Database>, now: Date) {
  return count(await db.deleteFrom('oauth_token').where('expires_at', '<', now).executeTakeFirst());
}

/** Messages sent or given up (their bodies are already erased). */
export async function purgeOutbox(db: Kysely<Database>, before: Date) {
  const result = await db
    .deleteFrom('outbox')
    .where('state', 'in', ['sent', 'failed'])
    .where('created_at', '<', before)
    .executeTakeFirst();
  return count(result);
}

export async function purgeEnrollments(db: Kysely<Database>, before: Date) {
  return count(await db.deleteFrom('enrollment').where('expires_at', '<', before).executeTakeFirst());
}

export async function purgePasswordResets(db: Kysely<Database>, before: Date) {
  return count(await db.deleteFrom('password_reset').where('created_at', '<', before).executeTakeFirst());
}

/**
 * Ends the sessions whose idle timeout or lifetime has passed, as of their expiry (reason `expired`): an expired
 * session otherwise stays unended, in the indexes of live sessions, until its purge (migrations/0017).
 */
export async function endExpiredSessions(db: Kysely<Database>, now: Date) {
  const result = await db
    .updateTable('user_session')
    .set((eb) => ({ ended_at: eb.ref('expires_at'), end_reason: 'expired' }))
    .where('ended_at', 'is', null)
    .where('expires_at', '<=', now)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Sessions that ended or expired before `before`. */
export async function purgeSessions(db: Kysely<Database>, before: Date) {
  const result = await db
    .deleteFrom('user_session')
    .where(sql<boolean>`coalesce(ended_at, expires_at) < ${before}`)
    .executeTakeFirst();
  return count(result);
}

/**
 * TOTP steps used before `before`. A scan of the table (there is no index on `used_at`: it would cost every login an
 * index entry), which the retention's interval keeps to a few times an hour.
 */
export async function purgeTotpSteps(db: Kysely<Database>, before: Date) {
  return count(await db.deleteFrom('totp_used').where('used_at', '<', before).executeTakeFirst());
}
