import { sql, type Kysely, type Transaction } from 'kysely';
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

export interface EventFilter {
  from?: Date | undefined;
  to?: Date | undefined;
  type?: string | undefined;
  userId?: number | undefined;
  /** Only events older than this one (its id): the next page. */
  before?: number | undefined;
  limit: number;
}

/**
 * A page of a service's events, newest first: by id, or, when the page is bounded in time (`from`, `to`), by date
 * then id, through the index of the service's events by date (migrations/0022), so that a page reads about as many
 * events as it shows. Ordered by id, a page before a date read every newer event of every service (648 ms at 4 million
 * events, which failed logins make without an account; found by an attack round). `before` is then the keyset of the
 * event with that id (its date and id), which must be the service's: the next page of the same order.
 */
export async function listEvents(db: Kysely<Database>, serviceName: string, filter: EventFilter) {
  const byTime = filter.from !== undefined || filter.to !== undefined;
  let query = db.selectFrom('audit_event').selectAll().where('service_name', '=', serviceName);
  if (filter.from) query = query.where('created_at', '>=', filter.from);
  if (filter.to) query = query.where('created_at', '<', filter.to);
  if (filter.type?.endsWith('*')) query = query.where('type', 'like', `${filter.type.slice(0, -1).replace(/[\\%_]/g, '\\$&')}%`);
  else if (filter.type) query = query.where('type', '=', filter.type);
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  if (filter.before !== undefined) {
    query = byTime
      ? query.where(
          // The event named must be this service's: another's date is none of the caller's business.
          sql<boolean>`(created_at, id) < (SELECT e.created_at, e.id FROM audit_event AS e
                                           WHERE e.id = ${filter.before} AND e.service_name = ${serviceName})`,
        )
      : query.where('id', '<', filter.before);
  }
  const ordered = byTime ? query.orderBy('created_at', 'desc').orderBy('id', 'desc') : query.orderBy('id', 'desc');
  return ordered.limit(filter.limit).execute();
}

/**
 * Deletes the events older than `cutoff` (the append-only trigger lets this transaction through, and only it) and
 * records the purge itself, in the same transaction. Returns how many were deleted.
 */
export async function purgeEvents(db: Kysely<Database>, cutoff: Date, actor: string): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await sql`SELECT set_config('pcc.audit_purge', 'on', true)`.execute(trx);
    const result = await trx.deleteFrom('audit_event').where('created_at', '<', cutoff).executeTakeFirst();
    await sql`SELECT set_config('pcc.audit_purge', 'off', true)`.execute(trx);
    const deleted = Number(result.numDeletedRows);
    await insertEvent(trx, {
      serviceName: null,
      type: 'audit.purged',
      actor,
      ip: null,
      data: { before: cutoff.toISOString(), deleted },
    });
    return deleted;
  });
}
