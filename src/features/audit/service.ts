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

  async list(serviceName: string, query: { from?: string | undefined; to?: string | undefined; type?: string | undefined }) {
    const from = parseDate('from', query.from);
    const to = parseDate('to', query.to);
    const rows = await repo.listEvents(this.db, serviceName, { from, to, type: query.type });
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
}

function parseDate(field: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw invalidField(field, 'is not a valid datetime');
  return date;
}
