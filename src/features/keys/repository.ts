import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../db/types.js';
import { contexts, pendingChangeContext } from '../../security/contexts.js';
import { SecretBox } from '../../security/secret-box.js';

export interface RotationReport {
  applicationSecrets: number;
  totpSecrets: number;
  enrollments: number;
  pendingChanges: number;
  outboxMessages: number;
}

type Row = Record<string, unknown>;

/** A column of sealed secrets: where it is, how to read its value, and the context each row's value is bound to. */
interface SealedColumn {
  table: keyof Database;
  id: string;
  /** The sealed text, as an SQL expression (a JSON field for a task's pending change). */
  sealed: string;
  /** Other columns the context needs. */
  columns: string[];
  context: (row: Row) => string;
  write: (trx: Transaction<Database>, row: Row, sealed: string) => Promise<unknown>;
}

const BATCH = 200;

const setColumn = (table: keyof Database, id: string, column: string) => (trx: Transaction<Database>, row: Row, sealed: string) =>
  sql`UPDATE ${sql.table(table)} SET ${sql.ref(column)} = ${sealed} WHERE ${sql.ref(id)} = ${row[id]}`.execute(trx);

const SEALED: Record<keyof RotationReport, SealedColumn> = {
  applicationSecrets: {
    table: 'application',
    id: 'application_id',
    sealed: 'secret_ciphertext',
    columns: ['application_key'],
    context: (row) => contexts.applicationSecret(row.application_key as string),
    write: setColumn('application', 'application_id', 'secret_ciphertext'),
  },
  totpSecrets: {
    table: 'pcc_user',
    id: 'user_id',
    sealed: 'totp_secret_ciphertext',
    columns: [],
    context: (row) => contexts.totpSecret(row.user_id as number),
    write: setColumn('pcc_user', 'user_id', 'totp_secret_ciphertext'),
  },
  enrollments: {
    table: 'enrollment',
    id: 'enrollment_id',
    sealed: 'secret_ciphertext',
    columns: [],
    context: (row) => contexts.enrollmentSecret(row.enrollment_id as string),
    write: setColumn('enrollment', 'enrollment_id', 'secret_ciphertext'),
  },
  pendingChanges: {
    table: 'task',
    id: 'task_id',
    sealed: "payload ->> 'change'",
    columns: ['name', 'payload'],
    context: (row) => pendingChangeContext(row as never),
    write: (trx, row, sealed) =>
      sql`UPDATE task SET payload = jsonb_set(payload, '{change}', to_jsonb(${sealed}::text)) WHERE task_id = ${row.task_id}`.execute(
        trx,
      ),
  },
  outboxMessages: {
    table: 'outbox',
    id: 'id',
    sealed: 'body_ciphertext',
    columns: ['recipient', 'operation_id'],
    context: (row) => contexts.outboxBody(row.recipient as string, row.operation_id as number | null),
    write: setColumn('outbox', 'id', 'body_ciphertext'),
  },
};

/**
 * Re-seals every stored secret with the active key (the first of SECRET_KEYS). Rows already under it are left alone,
 * so the command can be run again after an interruption. Each batch of rows is read `FOR UPDATE` and rewritten in the
 * same transaction: a change made meanwhile (a new TOTP secret, a task applied) waits for the batch and is never
 * reverted by it. Keep the old key in SECRET_KEYS until this has run on every database that uses it; then it can be
 * dropped.
 */
export async function rotateKeys(db: Kysely<Database>, box: SecretBox): Promise<RotationReport> {
  const report = {} as RotationReport;
  for (const [name, target] of Object.entries(SEALED) as Array<[keyof RotationReport, SealedColumn]>) {
    report[name] = await rotateColumn(db, box, target);
  }
  return report;
}

async function rotateColumn(db: Kysely<Database>, box: SecretBox, target: SealedColumn): Promise<number> {
  const sealedSql = sql.raw(target.sealed);
  let total = 0;
  for (;;) {
    const done = await db.transaction().execute(async (trx) => {
      // `v1.<keyId>.<iv>.<body>`: the key id is the second field.
      const { rows } = await sql<Row>`
        SELECT ${sql.join([target.id, ...target.columns].map((c) => sql.ref(c)))}, ${sealedSql} AS sealed
        FROM ${sql.table(target.table)}
        WHERE ${sealedSql} IS NOT NULL AND split_part(${sealedSql}, '.', 2) <> ${box.activeKeyId}
        LIMIT ${BATCH} FOR UPDATE`.execute(trx);
      for (const row of rows) {
        const context = target.context(row);
        await target.write(trx, row, box.seal(box.open(row.sealed as string, context), context));
      }
      return rows.length;
    });
    total += done;
    if (done < BATCH) return total;
  }
}
