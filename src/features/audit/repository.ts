import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../db/types.js';
import type { AuditEventInput } from './api.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** Appends one event; it is written in the transaction of the change it records, never updated or deleted. */
export async function insertEvent(trx: Executor, event: AuditEventInput): Promise<void> {
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
 * Deletes the events older than `cutoff` (`audit_delete_before`, migrations/0023: at least 29 days old, whatever the
 * caller's rights) and records the purge itself, in the same transaction. Returns how many were deleted.
 */
export async function purgeEvents(db: Kysely<Database>, cutoff: Date, actor: string): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const deleted = await deleteEventsBefore(trx, cutoff, null);
    await recordPurge(trx, cutoff, deleted, actor);
    return deleted;
  });
}

/**
 * Deletes the `batch` oldest events older than `cutoff` (all of them when `batch` is null) through
 * `audit_delete_before` (migrations/0023), the one way events are deleted: at least 29 days old, found through the
 * index of dates wherever they sit in the table. When fewer than `batch` go, none older is left.
 */
export async function deleteEventsBefore(db: Executor, cutoff: Date, batch: number | null): Promise<number> {
  const { rows } = await sql<{
    deleted: number;
  }>`SELECT audit_delete_before(${cutoff}::timestamptz, ${batch}::integer) AS deleted`.execute(db);
  return Number(rows[0]?.deleted ?? 0);
}

/** The purge's own event, `audit.purged` (the operator's, or the retention's). */
export const recordPurge = (db: Executor, cutoff: Date, deleted: number, actor: string): Promise<void> =>
  insertEvent(db, { serviceName: null, type: 'audit.purged', actor, ip: null, data: { before: cutoff.toISOString(), deleted } });

/** Whether the database role may delete old audit events: EXECUTE on `audit_delete_before` (migrations/0023). */
export async function mayDeleteEvents(db: Executor): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>`SELECT has_function_privilege('audit_delete_before(timestamptz, integer)',
    'EXECUTE') AS ok`.execute(db);
  return rows[0]?.ok === true;
}
