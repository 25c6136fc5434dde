import { sql, type CompiledQuery, type Kysely, type Transaction } from 'kysely';
import type { Database, WhitelistRow, WhitelistState } from '../../db/types.js';
import { prepared } from '../../db/prepared.js';

type Executor = Kysely<Database> | Transaction<Database>;

export async function listLiveIds(db: Executor, serviceName: string): Promise<number[]> {
  const rows = await db
    .selectFrom('two_fa_whitelist')
    .select('id')
    .where('service_name', '=', serviceName)
    .where('state', '<>', 'removed')
    .orderBy('id')
    .execute();
  return rows.map((r) => r.id);
}

export async function countLive(trx: Transaction<Database>, serviceName: string): Promise<number> {
  const row = await trx
    .selectFrom('two_fa_whitelist')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('service_name', '=', serviceName)
    .where('state', '<>', 'removed')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * The read behind every `GET …/twoFAWhitelist/{id}`: entries by id (the primary key), for the reads that arrive
 * together (`BatchedLookup`); built once and run as a prepared statement, only its parameter changes.
 */
let findEntriesQuery: CompiledQuery<WhitelistRow> | undefined;

export async function findEntries(db: Executor, ids: number[]): Promise<Map<number, WhitelistRow>> {
  findEntriesQuery ??= prepared(
    'find_whitelist_entries',
    db
      .selectFrom('two_fa_whitelist')
      .select(['id', 'service_name', 'ip', 'cidr_netmask', 'network', 'description', 'state', 'created_at', 'updated_at'])
      .where('id', '=', sql<number>`any(${sql.val([])}::bigint[])`)
      .compile(),
  );
  const result = await db.executeQuery<WhitelistRow>({ ...findEntriesQuery, parameters: [ids] });
  return new Map(result.rows.map((row) => [Number(row.id), row]));
}

export async function lockEntry(trx: Transaction<Database>, serviceName: string, id: number) {
  return trx
    .selectFrom('two_fa_whitelist')
    .selectAll()
    .where('service_name', '=', serviceName)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
}

export async function findLiveByNetwork(trx: Transaction<Database>, serviceName: string, ip: string, cidrNetmask: number) {
  return trx
    .selectFrom('two_fa_whitelist')
    .select(['id', 'state'])
    .where('service_name', '=', serviceName)
    .where('state', '<>', 'removed')
    .where('ip', '=', ip)
    .where('cidr_netmask', '=', cidrNetmask)
    .executeTakeFirst();
}

export async function insertEntry(
  trx: Transaction<Database>,
  entry: { serviceName: string; ip: string; cidrNetmask: number; description: string; now: Date },
): Promise<WhitelistRow> {
  return trx
    .insertInto('two_fa_whitelist')
    .values({
      service_name: entry.serviceName,
      ip: entry.ip,
      cidr_netmask: entry.cidrNetmask,
      description: entry.description,
      state: 'enabling',
      created_at: entry.now,
      updated_at: entry.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function updateEntry(
  trx: Transaction<Database>,
  id: number,
  changes: { state?: WhitelistState; description?: string; now: Date },
  onlyFrom?: readonly WhitelistState[],
): Promise<number> {
  let query = trx
    .updateTable('two_fa_whitelist')
    .set({
      ...(changes.state !== undefined ? { state: changes.state } : {}),
      ...(changes.description !== undefined ? { description: changes.description } : {}),
      updated_at: changes.now,
    })
    .where('id', '=', id);
  if (onlyFrom) query = query.where('state', 'in', onlyFrom);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Whether an `enabled` entry of the service holds the address (`<<=` on inet). */
export async function hasEnabledEntryFor(db: Executor, serviceName: string, ip: string): Promise<boolean> {
  const row = await db
    .selectFrom('two_fa_whitelist')
    .select('id')
    .where('service_name', '=', serviceName)
    .where('state', '=', 'enabled')
    .where(sql<boolean>`${ip}::inet <<= network`)
    .executeTakeFirst();
  return Boolean(row);
}
