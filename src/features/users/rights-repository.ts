import type { Insertable, Kysely, Transaction, Updateable } from 'kysely';
import type { Database, UserObjectRightTable, UserRightTable } from '../../db/types.js';

type Executor = Kysely<Database> | Transaction<Database>;

export async function insertRight(trx: Transaction<Database>, values: Insertable<UserRightTable>) {
  return trx.insertInto('user_right').values(values).returningAll().executeTakeFirstOrThrow();
}

export async function listRightIds(db: Executor, userId: number): Promise<number[]> {
  const rows = await db.selectFrom('user_right').select('right_id').where('user_id', '=', userId).orderBy('right_id').execute();
  return rows.map((r) => r.right_id);
}

export async function findRight(db: Executor, userId: number, rightId: number) {
  return db.selectFrom('user_right').selectAll().where('user_id', '=', userId).where('right_id', '=', rightId).executeTakeFirst();
}

export async function updateRight(trx: Transaction<Database>, rightId: number, changes: Updateable<UserRightTable>) {
  return trx.updateTable('user_right').set(changes).where('right_id', '=', rightId).returningAll().executeTakeFirstOrThrow();
}

export async function listObjectRightIds(db: Executor, userId: number): Promise<number[]> {
  const rows = await db
    .selectFrom('user_object_right')
    .select('object_right_id')
    .where('user_id', '=', userId)
    .orderBy('object_right_id')
    .execute();
  return rows.map((r) => r.object_right_id);
}

export async function findObjectRight(db: Executor, userId: number, objectRightId: number) {
  return db
    .selectFrom('user_object_right')
    .selectAll()
    .where('user_id', '=', userId)
    .where('object_right_id', '=', objectRightId)
    .executeTakeFirst();
}

export async function findObjectRightFor(db: Executor, userId: number, type: string, vmwareObjectId: string) {
  return db
    .selectFrom('user_object_right')
    .select('object_right_id')
    .where('user_id', '=', userId)
    .where('type', '=', type as UserObjectRightTable['type'])
    .where('vmware_object_id', '=', vmwareObjectId)
    .executeTakeFirst();
}

export async function countObjectRights(db: Executor, userId: number): Promise<number> {
  const row = await db
    .selectFrom('user_object_right')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function insertObjectRight(trx: Transaction<Database>, values: Insertable<UserObjectRightTable>) {
  return trx.insertInto('user_object_right').values(values).returningAll().executeTakeFirstOrThrow();
}

export async function deleteObjectRight(trx: Transaction<Database>, objectRightId: number): Promise<void> {
  await trx.deleteFrom('user_object_right').where('object_right_id', '=', objectRightId).execute();
}
