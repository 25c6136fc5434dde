import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/types.js';
import type { AuditEventInput } from './api.js';

/** Appends one event; it is written in the transaction of the change it records, never updated or deleted. */
export async function insertEvent(trx: Kysely<Database> | Transaction<Database>, event: AuditEventInput): Promise<void> {
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

export async function listEvents(
  db: Kysely<Database>,
  serviceName: string,
  filter: { from?: Date | undefined; to?: Date | undefined; type?: string | undefined },
) {
  let query = db.selectFrom('audit_event').selectAll().where('service_name', '=', serviceName);
  if (filter.from) query = query.where('created_at', '>=', filter.from);
  if (filter.to) query = query.where('created_at', '<', filter.to);
  if (filter.type?.endsWith('*')) query = query.where('type', 'like', `${filter.type.slice(0, -1).replace(/[\\%_]/g, '\\$&')}%`);
  else if (filter.type) query = query.where('type', '=', filter.type);
  return query.orderBy('id', 'desc').limit(1000).execute();
}
