import { contexts } from '../security/contexts.js';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/types.js';
import type { SecretBox } from '../security/secret-box.js';
import type { Sender } from './senders.js';

const MAX_ATTEMPTS = 8;

export interface NewMessage {
  serviceName: string | null;
  channel: 'sms' | 'email';
  recipient: string;
  body: string;
  operationId: number | null;
}

/** Queues a message in the caller's transaction: it leaves only if the change that wants it commits. */
export async function enqueueMessage(trx: Transaction<Database>, box: SecretBox, message: NewMessage, now: Date): Promise<void> {
  await trx
    .insertInto('outbox')
    .values({
      service_name: message.serviceName,
      channel: message.channel,
      recipient: message.recipient,
      body_ciphertext: box.seal(message.body, contexts.outboxBody(message.recipient, message.operationId)),
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

/**
 * Sends due messages. Each is claimed with `SKIP LOCKED` and a lease, sent, then marked `sent` with its body erased.
 * A failure retries with a growing delay, up to 8 times; a message whose sender crashed is retried after the lease
 * (delivery is at least once).
 */
export class OutboxDrainer {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly sender: Sender,
    private readonly log: Logger,
    private readonly workerId: string,
  ) {}

  async drain(now: () => Date, limit = 50): Promise<number> {
    let sent = 0;
    for (let i = 0; i < limit; i++) {
      const at = now();
      const row = await this.db
        .updateTable('outbox')
        .set((eb) => ({
          state: 'sending',
          locked_by: this.workerId,
          locked_until: new Date(at.getTime() + 60_000),
          attempts: eb('attempts', '+', 1),
        }))
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
      if (!row) break;
      const log = this.log.child({
        outboxId: row.id,
        channel: row.channel,
        operationId: row.operation_id,
        attempt: row.attempts,
      });
      try {
        if (!row.body_ciphertext) throw new Error('message has no body');
        const body = this.box.open(row.body_ciphertext, contexts.outboxBody(row.recipient, row.operation_id));
        await this.sender.send({ channel: row.channel, to: row.recipient, body, operationId: row.operation_id });
        await this.db
          .updateTable('outbox')
          .set({ state: 'sent', sent_at: now(), body_ciphertext: null, locked_by: null, locked_until: null, last_error: null })
          .where('id', '=', row.id)
          .execute();
        log.info({ sender: this.sender.name }, 'message sent');
        sent++;
      } catch (err) {
        const giveUp = row.attempts >= MAX_ATTEMPTS;
        const delayMs = Math.min(2 ** row.attempts * 5_000, 15 * 60_000);
        await this.db
          .updateTable('outbox')
          .set({
            state: giveUp ? 'failed' : 'pending',
            next_attempt_at: new Date(now().getTime() + delayMs),
            // nothing secret stays once the message is given up
            body_ciphertext: giveUp ? null : row.body_ciphertext,
            locked_by: null,
            locked_until: null,
            last_error: (err instanceof Error ? err.message : String(err)).slice(0, 500),
          })
          .where('id', '=', row.id)
          .execute();
        log.warn({ err, giveUp }, 'message not sent');
      }
    }
    return sent;
  }
}
