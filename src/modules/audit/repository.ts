import type { Transaction } from 'kysely';
import type { Database } from '../../db/types.js';

export interface AuditInput {
  serviceName: string | null;
  type: string;
  actor: string | null;
  ip: string | null;
  userId?: number | null;
  data?: Record<string, unknown>;
}

/** Appends one event; it is written in the transaction of the change it records, never updated or deleted. */
export async function recordAudit(trx: Transaction<Database>, event: AuditInput): Promise<void> {
  await trx
    .insertInto('audit_event')
    .values({
      service_name: event.serviceName,
      type: event.type,
      actor: event.actor,
      ip: event.ip,
      user_id: event.userId ?? null,
      data: JSON.stringify(event.data ?? {}),
    })
    .execute();
}
