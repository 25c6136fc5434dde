import type { Kysely, Transaction, Updateable } from 'kysely';
import type { Database, ServiceTable } from '../../db/types.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** `accountId: null` means an operator who sees every service. */
export async function listServiceNames(db: Executor, accountId: number | null): Promise<string[]> {
  let query = db.selectFrom('service').select('service_name');
  if (accountId !== null) query = query.where('account_id', '=', accountId);
  const rows = await query.orderBy('service_name').execute();
  return rows.map((r) => r.service_name);
}

export async function findService(db: Executor, serviceName: string, accountId: number | null) {
  let query = db.selectFrom('service').selectAll().where('service_name', '=', serviceName);
  if (accountId !== null) query = query.where('account_id', '=', accountId);
  return query.executeTakeFirst();
}

export async function findOrCreateAccount(trx: Transaction<Database>, login: string) {
  await trx
    .insertInto('account')
    .values({ login })
    .onConflict((oc) => oc.column('login').doNothing())
    .execute();
  return trx.selectFrom('account').selectAll().where('login', '=', login).executeTakeFirstOrThrow();
}

export async function insertService(trx: Transaction<Database>, serviceName: string, accountId: number, description: string) {
  return trx
    .insertInto('service')
    .values({ service_name: serviceName, account_id: accountId, description })
    .onConflict((oc) => oc.column('service_name').doNothing())
    .returningAll()
    .executeTakeFirst();
}

export async function updateService(trx: Transaction<Database>, serviceName: string, changes: Updateable<ServiceTable>) {
  if (Object.keys(changes).length === 0) return;
  await trx.updateTable('service').set(changes).where('service_name', '=', serviceName).execute();
}
