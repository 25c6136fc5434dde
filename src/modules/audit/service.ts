import type { Kysely } from 'kysely';
import { toOvhDate } from '../../clock.js';
import type { Database } from '../../db/types.js';
import { invalidField } from '../../http/errors.js';
import { listAuditEvents } from './repository.js';

export class AuditService {
  constructor(private readonly db: Kysely<Database>) {}

  async list(serviceName: string, query: { from?: string | undefined; to?: string | undefined; type?: string | undefined }) {
    const from = parseDate('from', query.from);
    const to = parseDate('to', query.to);
    const rows = await listAuditEvents(this.db, serviceName, { from, to, type: query.type });
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
