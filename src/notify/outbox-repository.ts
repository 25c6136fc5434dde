import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/types.js';

export async function insertMessage(
  trx: Transaction<Database>,
  message: {
    serviceName: string | null;
    channel: 'sms' | 'email';
    recipient: string;
    bodyCiphertext: string;
    operationId: number | null;
  },
  now: Date,
): Promise<void> {
  await trx
    .insertInto('outbox')
    .values({
      service_name: message.serviceName,
      channel: message.channel,
      recipient: message.recipient,
      body_ciphertext: message.bodyCiphertext,
      operation_id: message.operationId,
      next_attempt_at: now,
      created_at: now,
      locked_by: null,
      locked_until: null,
      sent_at: null,
      last_error: null,
    })
    .execute();
}

/** Claims the next due message for `workerId` (`SKIP LOCKED`: instances never wait on each other), or a stale one. */
export async function claimDueMessage(db: Kysely<Database>, workerId: string, at: Date, leaseUntil: Date) {
  return db
    .updateTable('outbox')
    .set((eb) => ({ state: 'sending', locked_by: workerId, locked_until: leaseUntil, attempts: eb('attempts', '+', 1) }))
    .where('id', '=', (eb) =>
      eb
        .selectFrom('outbox')
        .select('id')
        .where((w) =>
          w.or([
            w.and([w('state', '=', 'pending'), w('next_attempt_at', '<=', at)]),
            w.and([w('state', '=', 'sending'), w('locked_until', '<', at)]),
          ]),
        )
        .orderBy('next_attempt_at')
        .limit(1)
        .forUpdate()
        .skipLocked(),
    )
    .returningAll()
    .executeTakeFirst();
}

/** Sent: the body is erased at once. */
export async function markSent(db: Kysely<Database>, id: number, now: Date): Promise<void> {
  await db
    .updateTable('outbox')
    .set({ state: 'sent', sent_at: now, body_ciphertext: null, locked_by: null, locked_until: null, last_error: null })
    .where('id', '=', id)
    .execute();
}

/** Not sent: retried at `nextAttemptAt`, or given up (and its body erased). */
export async function markFailed(
  db: Kysely<Database>,
  id: number,
  outcome: { giveUp: boolean; nextAttemptAt: Date; bodyCiphertext: string | null; error: string },
): Promise<void> {
  await db
    .updateTable('outbox')
    .set({
      state: outcome.giveUp ? 'failed' : 'pending',
      next_attempt_at: outcome.nextAttemptAt,
      body_ciphertext: outcome.giveUp ? null : outcome.bodyCiphertext,
      locked_by: null,
      locked_until: null,
      last_error: outcome.error,
    })
    .where('id', '=', id)
    .execute();
}

/** SMS each of these numbers received in the window: the daily cap per number. */
export async function smsCountsSince(trx: Transaction<Database>, recipients: string[], since: Date) {
  return trx
    .selectFrom('outbox')
    .select(['recipient', (eb) => eb.fn.countAll<number>().as('n')])
    .where('recipient', 'in', recipients)
    .where('channel', '=', 'sms')
    .where('created_at', '>', since)
    .groupBy('recipient')
    .execute();
}
