import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../db/types.js';
import { ENABLE_SECURITY_OPTION } from './api.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** What the options are read from: the service's own properties. */
export async function serviceSecurity(db: Executor, serviceName: string) {
  return db
    .selectFrom('service')
    .select(['advanced_security', 'two_fa_state', 'user_access_policy', 'user_session_timeout', 'ssl_v3'])
    .where('service_name', '=', serviceName)
    .executeTakeFirstOrThrow();
}

/** The enabling task of an option that has not finished (waiting, due, running, or failed). */
export async function openEnablingTask(db: Executor, serviceName: string, option: string) {
  return db
    .selectFrom('task')
    .select(['task_id', 'state'])
    .where('service_name', '=', serviceName)
    .where('name', '=', ENABLE_SECURITY_OPTION)
    .where('state', 'in', ['waitingTodo', 'todo', 'doing', 'error'])
    .where(sql<string>`payload->>'option'`, '=', option)
    .orderBy('task_id', 'desc')
    .executeTakeFirst();
}

export async function enableAdvancedSecurity(trx: Transaction<Database>, serviceName: string): Promise<boolean> {
  const result = await trx
    .updateTable('service')
    .set({ advanced_security: true })
    .where('service_name', '=', serviceName)
    .where('advanced_security', '=', false)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
