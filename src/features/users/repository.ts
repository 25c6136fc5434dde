import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, PccUserTable, UserRow } from '../../db/types.js';
import type { Insertable, Updateable } from 'kysely';
import { ACTIVE_ACTIVATIONS, ACTIVE_STATES } from './api.js';

type Executor = Kysely<Database> | Transaction<Database>;

export async function listUserIds(db: Executor, serviceName: string, name?: string): Promise<number[]> {
  let query = db.selectFrom('pcc_user').select('user_id').where('service_name', '=', serviceName).where('deleted_at', 'is', null);
  if (name !== undefined) query = query.where('name', 'like', name);
  const rows = await query.orderBy('user_id').limit(10_000).execute();
  return rows.map((r) => r.user_id);
}

export async function findUser(db: Executor, serviceName: string, userId: number): Promise<UserRow | undefined> {
  return db
    .selectFrom('pcc_user')
    .selectAll()
    .where('service_name', '=', serviceName)
    .where('user_id', '=', userId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}

export async function findUserByName(db: Executor, serviceName: string, name: string): Promise<UserRow | undefined> {
  return db
    .selectFrom('pcc_user')
    .selectAll()
    .where('service_name', '=', serviceName)
    .where(sql<string>`lower(name)`, '=', name.toLowerCase())
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}

export async function lockUser(trx: Transaction<Database>, serviceName: string, userId: number): Promise<UserRow | undefined> {
  return trx
    .selectFrom('pcc_user')
    .selectAll()
    .where('service_name', '=', serviceName)
    .where('user_id', '=', userId)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
}

export async function insertUser(trx: Transaction<Database>, values: Insertable<PccUserTable>) {
  return trx.insertInto('pcc_user').values(values).returningAll().executeTakeFirstOrThrow();
}

export async function updateUser(trx: Executor, userId: number, changes: Updateable<PccUserTable>): Promise<void> {
  await trx.updateTable('pcc_user').set(changes).where('user_id', '=', userId).execute();
}

/** Updates the user only while `when` still holds (an undo that must not overwrite a later change). */
export async function updateUserIf(
  trx: Executor,
  userId: number,
  changes: Updateable<PccUserTable>,
  when: { state?: PccUserRowState; activation_state?: PccUserActivation },
): Promise<void> {
  let query = trx.updateTable('pcc_user').set(changes).where('user_id', '=', userId);
  if (when.state !== undefined) query = query.where('state', '=', when.state);
  if (when.activation_state !== undefined) query = query.where('activation_state', '=', when.activation_state);
  await query.execute();
}

type PccUserRowState = UserRow['state'];
type PccUserActivation = UserRow['activation_state'];

/** Users of the service who may validate operations and can receive an SMS. */
export async function tokenValidators(db: Executor, serviceName: string) {
  return (
    db
      .selectFrom('pcc_user')
      .select(['user_id', 'name', 'phone_number'])
      .where('service_name', '=', serviceName)
      .where('deleted_at', 'is', null)
      .where('is_token_validator', '=', true)
      .where('activation_state', 'in', ACTIVE_ACTIVATIONS)
      .where('state', 'in', ACTIVE_STATES)
      .where('phone_number', 'is not', null)
      // SMS go only to numbers their owner confirmed (NIST SP 800-63B §5.1.3.3)
      .where('phone_confirmed', '=', true)
      .orderBy('user_id')
      .execute()
  );
}

export async function recentPasswordHashes(db: Executor, userId: number, count: number): Promise<string[]> {
  if (count <= 0) return [];
  const rows = await db
    .selectFrom('password_history')
    .select('password_hash')
    .where('user_id', '=', userId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(count)
    .execute();
  return rows.map((r) => r.password_hash);
}

export async function addPasswordHistory(
  trx: Transaction<Database>,
  serviceName: string,
  userId: number,
  passwordHash: string,
  now: Date,
) {
  await trx
    .insertInto('password_history')
    .values({ service_name: serviceName, user_id: userId, password_hash: passwordHash, created_at: now })
    .execute();
}

export async function passwordPolicyRow(db: Executor, serviceName: string) {
  return db.selectFrom('password_policy').selectAll().where('service_name', '=', serviceName).executeTakeFirst();
}

/** "If one user changes his password, all users will have 2FA enabled." */
export async function enableTwoFaForService(trx: Transaction<Database>, serviceName: string): Promise<void> {
  await trx.updateTable('service').set({ two_fa_state: 'enabled' }).where('service_name', '=', serviceName).execute();
}

export async function findUserById(db: Executor, userId: number) {
  return db.selectFrom('pcc_user').selectAll().where('user_id', '=', userId).executeTakeFirst();
}

/** The service's virtual datacenter, where the rights OVH gives "in all Datacenters" live. */
export async function serviceDatacenterId(db: Executor, serviceName: string): Promise<number> {
  const row = await db
    .selectFrom('service')
    .select('datacenter_id')
    .where('service_name', '=', serviceName)
    .executeTakeFirstOrThrow();
  return row.datacenter_id;
}

/** Enabled users whose expiration date has passed (oldest first), for the worker to disable. */
export async function dueExpirations(db: Executor, now: Date, limit: number) {
  return db
    .selectFrom('pcc_user')
    .select(['user_id', 'service_name'])
    .where('expiration_date', '<=', now)
    .where('deleted_at', 'is', null)
    .where('state', '=', 'delivered')
    .where('activation_state', '=', 'enabled')
    .orderBy('expiration_date')
    .limit(limit)
    .execute();
}
