import type { Kysely, Transaction } from 'kysely';
import type { Database, SessionScope } from '../../db/types.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** Ends every live session of the user but `keep`; returns how many ended. */
export async function endUserSessions(trx: Executor, userId: number, reason: string, now: Date, keep?: number): Promise<number> {
  let query = trx
    .updateTable('user_session')
    .set({ ended_at: now, end_reason: reason })
    .where('user_id', '=', userId)
    .where('ended_at', 'is', null);
  if (keep !== undefined) query = query.where('session_id', '<>', keep);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export async function insertSession(
  trx: Executor,
  session: {
    tokenHash: Buffer;
    serviceName: string;
    userId: number;
    scope: SessionScope;
    ip: string;
    now: Date;
    expiresAt: Date;
  },
) {
  return trx
    .insertInto('user_session')
    .values({
      token_hash: session.tokenHash,
      service_name: session.serviceName,
      user_id: session.userId,
      scope: session.scope,
      ip: session.ip,
      created_at: session.now,
      last_seen_at: session.now,
      expires_at: session.expiresAt,
      ended_at: null,
      end_reason: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The live session of a token, with its user, in one indexed lookup. */
export async function findSession(db: Executor, tokenHash: Buffer) {
  return db
    .selectFrom('user_session as s')
    .innerJoin('pcc_user as u', 'u.user_id', 's.user_id')
    .innerJoin('service as v', 'v.service_name', 's.service_name')
    .selectAll('u')
    .select(['v.user_access_policy', 'v.user_session_timeout'])
    .select([
      's.session_id',
      's.scope',
      's.created_at as session_created_at',
      's.expires_at',
      's.last_seen_at',
      's.ended_at',
      's.service_name as session_service',
    ])
    .where('s.token_hash', '=', tokenHash)
    .executeTakeFirst();
}

/**
 * Locks the service's row until the transaction ends: logins to one service open their sessions one at a time, so
 * the count of connected users and any eviction are decided on a count no other login is changing.
 */
export async function lockServiceForLogin(trx: Transaction<Database>, serviceName: string): Promise<void> {
  await trx.selectFrom('service').select('service_name').where('service_name', '=', serviceName).forUpdate().execute();
}

/** The users connected to a service (at least one live session), with their first and latest live session. */
export async function connectedUsers(trx: Transaction<Database>, serviceName: string, now: Date) {
  return trx
    .selectFrom('user_session')
    .select((eb) => ['user_id', eb.fn.min('created_at').as('first_at'), eb.fn.max('created_at').as('last_at')])
    .where('service_name', '=', serviceName)
    .where('ended_at', 'is', null)
    .where('expires_at', '>', now)
    .groupBy('user_id')
    .execute();
}

export async function endSession(db: Executor, sessionId: number, reason: string, now: Date) {
  await db
    .updateTable('user_session')
    .set({ ended_at: now, end_reason: reason })
    .where('session_id', '=', sessionId)
    .where('ended_at', 'is', null)
    .execute();
}

export async function touchSession(db: Executor, sessionId: number, now: Date, expiresAt: Date) {
  await db
    .updateTable('user_session')
    .set({ last_seen_at: now, expires_at: expiresAt })
    .where('session_id', '=', sessionId)
    .execute();
}

/** The user's live sessions on the service, the most recent first. */
export async function listLiveSessions(db: Executor, userId: number, now: Date) {
  return db
    .selectFrom('user_session')
    .select(['session_id', 'scope', 'ip', 'created_at', 'last_seen_at', 'expires_at'])
    .where('user_id', '=', userId)
    .where('ended_at', 'is', null)
    .where('expires_at', '>', now)
    .orderBy('created_at', 'desc')
    .orderBy('session_id', 'desc')
    .limit(100)
    .execute();
}
