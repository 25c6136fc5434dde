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
 * A page of a service's events, newest first: by date, then id (the events of one transaction share their date), and
 * `before` is the keyset of the event with that id (its date and id), which must be the service's: the next page.
 * Each filter, alone or with a date range, is one range of an index that holds this order (migrations/0020):
 * the service's events, by type, by user, by user and type. A page then reads about the events it shows, however many
 * others the table holds: failed logins make events without an account, and a page that read them (ordered by id, or
 * by one index and filtered by the other) cost up to 837 ms at 4.5 million events and took another tenant's GET from
 * 7 ms to 5.6 s (three attack rounds).
 */
export async function listEvents(db: Kysely<Database>, serviceName: string, filter: EventFilter) {
  let query = db.selectFrom('audit_event').selectAll().where('service_name', '=', serviceName);
  if (filter.from) query = query.where('created_at', '>=', filter.from);
  if (filter.to) query = query.where('created_at', '<', filter.to);
  if (filter.type?.endsWith('*')) query = query.where('type', 'like', `${filter.type.slice(0, -1).replace(/[\\%_]/g, '\\$&')}%`);
  else if (filter.type) query = query.where('type', '=', filter.type);
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  if (filter.before !== undefined) {
    // The event named must be this service's: another's date is none of the caller's business.
    query = query.where(
      sql<boolean>`(created_at, id) < (SELECT e.created_at, e.id FROM audit_event AS e
                                       WHERE e.id = ${filter.before} AND e.service_name = ${serviceName})`,
    );
  }
  return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
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

/**
 * The retention's purge: deletes up to `batch` events older than `cutoff`, in one transaction that the append-only
 * trigger lets through. They are found through the BRIN index of dates (migrations/0023): only the block ranges whose
 * oldest event is older than `cutoff` are read (and the newest ranges, not yet summarized), wherever the events of
 * other dates sit; when fewer than `batch` go, none older is left.
 */
export async function expireOldestEvents(db: Kysely<Database>, cutoff: Date, batch: number): Promise<number> {
  return db.transaction().execute((trx) => expireOldestEventsIn(trx, cutoff, batch));
}

/** `expireOldestEvents` within a transaction of the caller's. */
export async function expireOldestEventsIn(trx: Transaction<Database>, cutoff: Date, batch: number): Promise<number> {
  await sql`SELECT set_config('pcc.audit_purge', 'on', true)`.execute(trx);
  // The ids as an array, looked up in the primary key: as `IN (subquery)`, PostgreSQL joins them by hash over a
  // sequential scan of the whole table.
  const result = await trx
    .deleteFrom('audit_event')
    .where(sql<boolean>`id = ANY (ARRAY(SELECT h.id FROM audit_event AS h WHERE h.created_at < ${cutoff} LIMIT ${batch}))`)
    .executeTakeFirst();
  await sql`SELECT set_config('pcc.audit_purge', 'off', true)`.execute(trx);
  return Number(result.numDeletedRows);
}

/** Whether the database role may delete audit events, as the retention does (the append-only trigger aside). */
export async function mayDeleteEvents(db: Kysely<Database> | Transaction<Database>): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>`SELECT has_table_privilege('audit_event', 'DELETE') AS ok`.execute(db);
  return rows[0]?.ok === true;
}
