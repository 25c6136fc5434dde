import type { Kysely, Transaction } from 'kysely';
import type { Database, UserRow } from '../../db/types.js';
import { isActiveUser } from './api.js';
import { tokenValidators } from './repository.js';

/** Who receives a token: `tokenTo` when he is a reachable token validator, else the service's token validators. */
export async function tokenRecipients(
  db: Kysely<Database> | Transaction<Database>,
  serviceName: string,
  tokenTo: UserRow | null,
): Promise<string[]> {
  if (tokenTo?.is_token_validator && tokenTo.phone_number && tokenTo.phone_confirmed && isActiveUser(tokenTo)) {
    return [tokenTo.phone_number];
  }
  return (await tokenValidators(db, serviceName)).map((v) => v.phone_number!).filter(Boolean);
}
