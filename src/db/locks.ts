import type { Transaction } from 'kysely';
import type { Database, ServiceRow } from './types.js';

/**
 * Locks a service's row until the transaction ends: the changes that check a per-service limit (whitelist size, user
 * names, allowed networks) or write the service run one at a time per service, on every instance.
 */
export async function lockService(trx: Transaction<Database>, serviceName: string): Promise<ServiceRow | undefined> {
  return trx.selectFrom('service').selectAll().where('service_name', '=', serviceName).forUpdate().executeTakeFirst();
}
