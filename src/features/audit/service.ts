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
}

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
