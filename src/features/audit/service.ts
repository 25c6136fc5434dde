import type { Kysely, Transaction } from 'kysely';
import { toOvhDate } from '../../clock.js';
import type { Database } from '../../db/types.js';
import { invalidField } from '../../http/errors.js';
import type { AuditEventInput, AuditLog } from './api.js';
import * as repo from './repository.js';

export class AuditService implements AuditLog {
  constructor(private readonly db: Kysely<Database>) {}

  record(trx: Transaction<Database>, event: AuditEventInput): Promise<void> {
    return repo.insertEvent(trx, event);
  }

  write(event: AuditEventInput): Promise<void> {
    return repo.insertEvent(this.db, event);
  }

  /** A page of the service's events, newest first: `limit` (default 100, at most 1000) older than `before`. */
  async list(serviceName: string, query: AuditQuery) {
    const rows = await repo.listEvents(this.db, serviceName, {
      from: parseDate('from', query.from),
      to: parseDate('to', query.to),
      type: query.type,
      userId: query.userId,
      before: query.before,
      limit: query.limit ?? DEFAULT_PAGE,
    });
    return rows.map((r) => ({
      id: r.id,
      date: toOvhDate(r.created_at),
      type: r.type,
      actor: r.actor,
      ip: r.ip,
      userId: r.user_id,
      data: r.data,
    }));
  }

  /** The operator's purge (CLI `audit purge`): events older than `cutoff` go, and the purge is itself recorded. */
  purge(cutoff: Date, actor: string): Promise<number> {
    return repo.purgeEvents(this.db, cutoff, actor);
  }

  /**
   * The retention's purge (`AUDIT_RETENTION_DAYS`): events older than `cutoff` go, `batch` at a time (each batch its
   * own short transaction, so that inserts never wait long on it), at most `maxBatches` a run; the run is recorded when
   * it deleted any. A backlog larger than that goes over the next runs.
   */
  async expire(cutoff: Date, { batch = EXPIRY_BATCH, maxBatches = EXPIRY_MAX_BATCHES } = {}): Promise<number> {
    let deleted = 0;
    for (let i = 0; i < maxBatches; i++) {
      const n = await repo.deleteEventsBefore(this.db, cutoff, batch);
      deleted += n;
      if (n < batch) break;
    }
    if (deleted > 0) await repo.recordPurge(this.db, cutoff, deleted, 'retention');
    return deleted;
  }

  /** Whether the database role may run the retention (EXECUTE on `audit_delete_before`): the start warns otherwise. */
  mayExpire(): Promise<boolean> {
    return repo.mayDeleteEvents(this.db);
  }
}

/** The retention's batches: 10,000 events a transaction, 50 a run (500,000 events every 10 minutes at most). */
const EXPIRY_BATCH = 10_000;
const EXPIRY_MAX_BATCHES = 50;

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export interface AuditQuery {
  from?: string | undefined;
  to?: string | undefined;
  type?: string | undefined;
  userId?: number | undefined;
  before?: number | undefined;
  limit?: number | undefined;
}

function parseDate(field: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw invalidField(field, 'is not a valid datetime');
  return date;
}
