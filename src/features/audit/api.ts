import type { Transaction } from 'kysely';
import type { Database } from '../../db/types.js';

export interface AuditEventInput {
  serviceName: string | null;
  type: string;
  actor: string | null;
  ip: string | null;
  userId?: number | null;
  data?: Record<string, unknown>;
}

/** The append-only audit log, as every feature writes to it. */
export interface AuditLog {
  /** Appends an event in the transaction of the change it records: both commit, or neither. */
  record(trx: Transaction<Database>, event: AuditEventInput): Promise<void>;
  /** Appends an event on its own (a decision that changes nothing else: a refused login). */
  write(event: AuditEventInput): Promise<void>;
}

/** The audit log's retention, as the worker's housekeeping runs it: deletes events older than `cutoff`. */
export interface AuditExpiry {
  expire(cutoff: Date): Promise<number>;
}
