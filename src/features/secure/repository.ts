import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/types.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** Records a TOTP time step as used; false when it was used already (the insert decides, atomically). */
export async function useTotpStep(db: Executor, userId: number, step: number, now: Date): Promise<boolean> {
  const inserted = await db
    .insertInto('totp_used')
    .values({ user_id: userId, step, used_at: now })
    .onConflict((oc) => oc.doNothing())
    .returning('step')
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function purgeTotpSteps(db: Executor, before: Date): Promise<void> {
  await db.deleteFrom('totp_used').where('used_at', '<', before).execute();
}

/** One enrollment offer at a time per user: the earlier unused ones go. */
export async function replaceEnrollment(
  trx: Transaction<Database>,
  offer: { enrollmentId: string; serviceName: string; userId: number; secretCiphertext: string; now: Date; expiresAt: Date },
): Promise<void> {
  await trx.deleteFrom('enrollment').where('user_id', '=', offer.userId).where('used_at', 'is', null).execute();
  await trx
    .insertInto('enrollment')
    .values({
      enrollment_id: offer.enrollmentId,
      service_name: offer.serviceName,
      user_id: offer.userId,
      secret_ciphertext: offer.secretCiphertext,
      created_at: offer.now,
      expires_at: offer.expiresAt,
      used_at: null,
    })
    .execute();
}

export async function findEnrollment(db: Executor, enrollmentId: string) {
  return db.selectFrom('enrollment').selectAll().where('enrollment_id', '=', enrollmentId).executeTakeFirst();
}

/** Uses an enrollment once; false when it was used already. */
export async function useEnrollment(trx: Transaction<Database>, enrollmentId: string, now: Date): Promise<boolean> {
  const used = await trx
    .updateTable('enrollment')
    .set({ used_at: now })
    .where('enrollment_id', '=', enrollmentId)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(used.numUpdatedRows) === 1;
}

export async function countResetsSince(trx: Transaction<Database>, userId: number, since: Date): Promise<number> {
  const row = await trx
    .selectFrom('password_reset')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('user_id', '=', userId)
    .where('created_at', '>', since)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Voids the user's live reset code, if any: voided, not deleted, so that it still counts towards the daily cap. */
export async function voidResets(trx: Transaction<Database>, userId: number, now: Date): Promise<void> {
  await trx
    .updateTable('password_reset')
    .set({ expires_at: now })
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .execute();
}

export async function insertReset(
  trx: Transaction<Database>,
  reset: { tokenHash: Buffer; serviceName: string; userId: number; now: Date; expiresAt: Date },
): Promise<void> {
  await trx
    .insertInto('password_reset')
    .values({
      token_hash: reset.tokenHash,
      service_name: reset.serviceName,
      user_id: reset.userId,
      created_at: reset.now,
      expires_at: reset.expiresAt,
      used_at: null,
    })
    .execute();
}

/** The user's live reset code, locked until the transaction ends. */
export async function lockLiveReset(trx: Transaction<Database>, userId: number, now: Date) {
  return trx
    .selectFrom('password_reset')
    .select(['token_hash', 'failed_attempts', 'expires_at'])
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .orderBy('created_at', 'desc')
    .forUpdate()
    .executeTakeFirst();
}

export async function updateReset(
  trx: Transaction<Database>,
  tokenHash: Buffer,
  changes: { used_at?: Date; failed_attempts?: number; expires_at?: Date },
): Promise<void> {
  await trx.updateTable('password_reset').set(changes).where('token_hash', '=', tokenHash).execute();
}
