import type { Kysely, Transaction } from 'kysely';
import type { Database, OperationRow } from '../../db/types.js';

type Executor = Kysely<Database> | Transaction<Database>;

export async function insertOperation(
  trx: Transaction<Database>,
  op: {
    serviceName: string;
    taskId: number | null;
    kind: string;
    userId: number | null;
    requestedBy: string;
    expiresAt: Date;
    approval: 'sms' | 'operator';
    tokenToUserId?: number | null | undefined;
    summary: string;
    now: Date;
  },
): Promise<OperationRow> {
  return trx
    .insertInto('operation')
    .values({
      service_name: op.serviceName,
      task_id: op.taskId,
      kind: op.kind,
      summary: op.summary,
      user_id: op.userId,
      requested_by: op.requestedBy,
      token_hash: null,
      token_expires_at: op.expiresAt,
      state: 'pending',
      validated_by_user_id: null,
      validated_at: null,
      last_sent_at: null,
      // the app's clock, like token_expires_at: `createdAt` and `expiresAt` are shown side by side
      created_at: op.now,
      approval: op.approval,
      token_to_user_id: op.tokenToUserId ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function setToken(trx: Transaction<Database>, operationId: number, tokenHash: Buffer, now: Date): Promise<void> {
  await trx
    .updateTable('operation')
    .set((eb) => ({ token_hash: tokenHash, last_sent_at: now, sends: eb('sends', '+', 1) }))
    .where('operation_id', '=', operationId)
    .execute();
}

export async function findOperation(db: Executor, serviceName: string, operationId: number, lock = false) {
  let query = db
    .selectFrom('operation')
    .selectAll()
    .where('service_name', '=', serviceName)
    .where('operation_id', '=', operationId);
  if (lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function latestPending(db: Executor, serviceName: string, userId: number, kind: string) {
  return db
    .selectFrom('operation')
    .selectAll()
    .where('service_name', '=', serviceName)
    .where('user_id', '=', userId)
    .where('kind', '=', kind)
    .where('state', '=', 'pending')
    .orderBy('operation_id', 'desc')
    .executeTakeFirst();
}

export async function recordFailure(trx: Transaction<Database>, operationId: number, failures: number, blocked: boolean) {
  await trx
    .updateTable('operation')
    .set({
      failed_attempts: failures,
      state: blocked ? 'blocked' : 'pending',
      ...(blocked ? { token_hash: null } : {}),
    })
    .where('operation_id', '=', operationId)
    .execute();
}

export async function markValidated(trx: Transaction<Database>, operationId: number, byUserId: number | null, now: Date) {
  await trx
    .updateTable('operation')
    .set({ state: 'validated', validated_by_user_id: byUserId, validated_at: now, token_hash: null })
    .where('operation_id', '=', operationId)
    .execute();
}

/** Ends the pending operations whose time ran out; returns them. */
export async function expireDue(trx: Transaction<Database>, now: Date) {
  return trx
    .updateTable('operation')
    .set({ state: 'expired', token_hash: null })
    .where('state', '=', 'pending')
    .where('token_expires_at', '<=', now)
    .returning(['operation_id', 'task_id', 'service_name', 'user_id'])
    .execute();
}

/** The service's gate: advancedSecurity, and whether it was ever armed. */
export async function gateOf(trx: Transaction<Database>, serviceName: string) {
  return trx
    .selectFrom('service')
    .select(['advanced_security', 'approval_armed_at'])
    .where('service_name', '=', serviceName)
    .executeTakeFirstOrThrow();
}

export async function armGate(trx: Transaction<Database>, serviceName: string, now: Date): Promise<void> {
  await trx
    .updateTable('service')
    .set({ approval_armed_at: now })
    .where('service_name', '=', serviceName)
    .where('approval_armed_at', 'is', null)
    .execute();
}
