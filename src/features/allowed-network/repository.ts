import { sql, type Kysely, type Transaction } from 'kysely';
import type { AllowedNetworkTable, Database } from '../../db/types.js';
import type { Updateable } from 'kysely';

type Executor = Kysely<Database> | Transaction<Database>;

export async function listIds(db: Executor, serviceName: string): Promise<number[]> {
  const rows = await db
    .selectFrom('allowed_network')
    .select('network_access_id')
    .where('service_name', '=', serviceName)
    .where('deleted_at', 'is', null)
    .orderBy('network_access_id')
    .execute();
  return rows.map((r) => r.network_access_id);
}

export async function find(db: Executor, serviceName: string, id: number, lock = false) {
  let query = db
    .selectFrom('allowed_network')
    .selectAll()
    .where('service_name', '=', serviceName)
    .where('network_access_id', '=', id)
    .where('deleted_at', 'is', null);
  if (lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function insert(
  trx: Transaction<Database>,
  row: { serviceName: string; network: string; description: string | null; now: Date },
) {
  return trx
    .insertInto('allowed_network')
    .values({
      service_name: row.serviceName,
      network: row.network,
      description: row.description,
      state: 'allowed',
      created_at: row.now,
      updated_at: row.now,
      deleted_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function update(trx: Executor, id: number, changes: Updateable<AllowedNetworkTable>) {
  await trx.updateTable('allowed_network').set(changes).where('network_access_id', '=', id).execute();
}

/** Whether the address is inside a live allowed network of the service (`>>=` on cidr). */
export async function isAllowed(db: Executor, serviceName: string, ip: string): Promise<boolean> {
  const row = await db
    .selectFrom('allowed_network')
    .select('network_access_id')
    .where('service_name', '=', serviceName)
    .where('deleted_at', 'is', null)
    .where('state', '<>', 'toDelete')
    .where(sql<boolean>`network >>= ${ip}::inet`)
    .executeTakeFirst();
  return Boolean(row);
}

/** The end of an update; a removal asked for meanwhile wins. */
export async function markAllowed(trx: Executor, id: number, now: Date) {
  await trx
    .updateTable('allowed_network')
    .set({ state: 'allowed', updated_at: now })
    .where('network_access_id', '=', id)
    .where('state', '=', 'toUpdate')
    .execute();
}
