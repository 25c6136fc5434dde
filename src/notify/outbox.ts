import { contexts } from '../security/contexts.js';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/types.js';
import type { SecretBox } from '../security/secret-box.js';
import type { Sender } from './senders.js';
import * as repo from './outbox-repository.js';
import type { OutboxMetrics } from '../metrics/registry.js';

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
  const bodyCiphertext = box.seal(message.body, contexts.outboxBody(message.recipient, message.operationId));
  await repo.insertMessage(trx, { ...message, bodyCiphertext }, now);
}

/** How many SMS each number received in the last 24 hours: an SMS costs money and an attacker may repeat requests. */
export async function smsSentToday(trx: Transaction<Database>, recipients: string[], now: Date): Promise<Map<string, number>> {
  const rows = await repo.smsCountsSince(trx, recipients, new Date(now.getTime() - 24 * 3600_000));
  return new Map(rows.map((r) => [r.recipient, Number(r.n)]));
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
    private readonly metrics?: OutboxMetrics,
  ) {}

  async drain(now: () => Date, limit = 50): Promise<number> {
    let sent = 0;
    for (let i = 0; i < limit; i++) {
      const at = now();
      const row = await repo.claimDueMessage(this.db, this.workerId, at, new Date(at.getTime() + 60_000));
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
        await repo.markSent(this.db, row.id, now());
        log.info({ sender: this.sender.name }, 'message sent');
        this.metrics?.messageSent(row.channel);
        sent++;
      } catch (err) {
        const giveUp = row.attempts >= MAX_ATTEMPTS;
        const delayMs = Math.min(2 ** row.attempts * 5_000, 15 * 60_000);
        // nothing secret stays once the message is given up
        await repo.markFailed(this.db, row.id, {
          giveUp,
          nextAttemptAt: new Date(now().getTime() + delayMs),
          bodyCiphertext: row.body_ciphertext,
          error: (err instanceof Error ? err.message : String(err)).slice(0, 500),
        });
        log.warn({ err, giveUp }, 'message not sent');
        this.metrics?.sendFailed(row.channel, giveUp);
      }
    }
    return sent;
  }
}
