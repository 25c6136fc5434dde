import { sql, type Kysely, type Transaction } from 'kysely';
import { executePrepared } from '../../db/prepared.js';
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
 * A login's commit (migrations/0011_login_session.sql, 0017): its TOTP step, its lockout success, its session within
 * the service's quota and the user's most live sessions (`userMax`), and the audit events, in one statement.
 */
export async function openLoginSession(
  db: Executor,
  p: {
    serviceName: string;
    userId: number;
    actor: string;
    ip: string;
    scope: SessionScope;
    tokenHash: Buffer;
    now: Date;
    expiresAt: Date;
    auditType: string;
    reset: boolean;
    totpStep: number | null;
    lockout: { clear: string[]; refund: Array<{ key: string; own: Date | null }> };
    userMax: number;
  },
): Promise<{ sessionId: number | null; replayed: boolean }> {
  const { rows } = await executePrepared(
    db,
    'open_login_session',
    sql<{ session_id: string | number | null; replayed: boolean }>`
    SELECT session_id, replayed FROM open_login_session(
      ${p.serviceName}, ${p.userId}::bigint, ${p.actor}, ${p.ip}::inet, ${p.scope}, ${p.tokenHash},
      ${p.now.toISOString()}::timestamptz, ${p.expiresAt.toISOString()}::timestamptz, ${p.auditType}, ${p.reset},
      ${p.totpStep}::bigint, ${p.lockout.clear}::text[], ${p.lockout.refund.map((r) => r.key)}::text[],
      ${p.lockout.refund.map((r) => r.own?.toISOString() ?? null)}::timestamptz[], ${p.userMax}::integer)`,
  );
  const row = rows[0];
  if (!row) throw new Error('open_login_session returned no row');
  return { sessionId: row.session_id === null ? null : Number(row.session_id), replayed: row.replayed };
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
