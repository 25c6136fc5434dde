import type { Transaction } from 'kysely';
import type { Database } from '../../db/types.js';

/** Certified-interface sessions, as the users feature ends them (a credential change, a removal, a disable). */
export interface Sessions {
  /** Ends every live session of the user but `keep`; returns how many ended. */
  endForUser(trx: Transaction<Database>, userId: number, reason: string, now: Date, keep?: number): Promise<number>;
}
