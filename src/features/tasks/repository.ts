import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, TaskRow, TaskState } from '../../db/types.js';

type Executor = Kysely<Database> | Transaction<Database>;

export interface NewTaskInput {
  serviceName: string;
  name: string;
  type: string;
  description: string;
  state?: TaskState;
  createdBy: string | null;
  createdFrom: string | null;
  executionDate: Date;
  userId?: number | null;
  networkAccessId?: number | null;
  network?: string | null;
  payload?: Record<string, unknown>;
}

/** Inserts a task; the caller's transaction holds the change it stands for. */
export async function insertTask(trx: Transaction<Database>, input: NewTaskInput): Promise<TaskRow> {
  return trx
    .insertInto('task')
    .values({
      service_name: input.serviceName,
      name: input.name,
      type: input.type,
      state: input.state ?? 'todo',
      description: input.description,
      created_by: input.createdBy,
      created_from: input.createdFrom,
      execution_date: input.executionDate,
      last_modification_date: input.executionDate,
      end_date: null,
      maintenance_date_from: null,
      maintenance_date_to: null,
      datacenter_id: null,
      filer_id: null,
      host_id: null,
      network: input.network ?? null,
      network_access_id: input.networkAccessId ?? null,
      order_id: null,
      parent_task_id: null,
      user_id: input.userId ?? null,
      vlan_id: null,
      payload: JSON.stringify(input.payload ?? {}),
      locked_by: null,
      locked_until: null,
      last_error: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findTask(db: Executor, serviceName: string, taskId: number): Promise<TaskRow | undefined> {
  return db
    .selectFrom('task')
    .selectAll()
    .where('service_name', '=', serviceName)
    .where('task_id', '=', taskId)
    .executeTakeFirst();
}

/** The filters of OVH's task lists (`…/task`, `…/user/{userId}/task`, `…/globalTasks`); every one given must hold. */
export interface TaskFilter {
  name?: string | undefined;
  state?: TaskState | undefined;
  states?: TaskState[] | undefined;
  userId?: number | undefined;
  networkAccessId?: number | undefined;
  datacenterId?: number | undefined;
  filerId?: number | undefined;
  hostId?: number | undefined;
  orderId?: number | undefined;
  parentTaskId?: number | undefined;
  vlanId?: number | undefined;
  executionDateFrom?: Date | undefined;
  executionDateTo?: Date | undefined;
  endDateFrom?: Date | undefined;
  endDateTo?: Date | undefined;
  lastModificationDateFrom?: Date | undefined;
  lastModificationDateTo?: Date | undefined;
}

/** `name` is a LIKE pattern, as in OVH's "(like)" filters. */
export async function listTaskIds(db: Executor, serviceName: string, filter: TaskFilter): Promise<number[]> {
  let query = db.selectFrom('task').select('task_id').where('service_name', '=', serviceName);
  if (filter.name !== undefined) query = query.where('name', 'like', filter.name);
  if (filter.state !== undefined) query = query.where('state', '=', filter.state);
  if (filter.states !== undefined && filter.states.length > 0) query = query.where('state', 'in', filter.states);
  const equal = [
    ['user_id', filter.userId],
    ['network_access_id', filter.networkAccessId],
    ['datacenter_id', filter.datacenterId],
    ['filer_id', filter.filerId],
    ['host_id', filter.hostId],
    ['order_id', filter.orderId],
    ['parent_task_id', filter.parentTaskId],
    ['vlan_id', filter.vlanId],
  ] as const;
  for (const [column, value] of equal) if (value !== undefined) query = query.where(column, '=', value);
  const ranges = [
    ['execution_date', filter.executionDateFrom, filter.executionDateTo],
    ['end_date', filter.endDateFrom, filter.endDateTo],
    ['last_modification_date', filter.lastModificationDateFrom, filter.lastModificationDateTo],
  ] as const;
  for (const [column, from, to] of ranges) {
    if (from !== undefined) query = query.where(column, '>=', from);
    if (to !== undefined) query = query.where(column, '<=', to);
  }
  const rows = await query.orderBy('task_id').limit(10_000).execute();
  return rows.map((r) => r.task_id);
}

/** Locks one task of the service for a change of state by the API. */
export async function lockTask(trx: Transaction<Database>, serviceName: string, taskId: number) {
  return trx
    .selectFrom('task')
    .selectAll()
    .where('service_name', '=', serviceName)
    .where('task_id', '=', taskId)
    .forUpdate()
    .executeTakeFirst();
}

export async function updateTask(
  trx: Transaction<Database>,
  taskId: number,
  changes: Partial<
    Pick<TaskRow, 'state' | 'progress' | 'description' | 'execution_date' | 'last_error' | 'end_date' | 'attempts'>
  > & {
    last_modification_date: Date;
  },
): Promise<TaskRow> {
  return trx.updateTable('task').set(changes).where('task_id', '=', taskId).returningAll().executeTakeFirstOrThrow();
}

/**
 * Claims the next due task for `workerId`: a `todo` task whose execution date has come, or a `doing` task whose
 * lease ran out (its instance died). `SKIP LOCKED` lets every instance claim at once without waiting on each other.
 */
export async function claimDueTask(db: Kysely<Database>, workerId: string, now: Date, leaseUntil: Date) {
  return (await claimDueTasks(db, workerId, now, leaseUntil, 1))[0];
}

/**
 * Claims up to `limit` due tasks (oldest execution date first) for a worker, marking them `doing` under its lease.
 * The claim is committed without waiting for the disk (`synchronous_commit off`): a claim lost in a database crash
 * only leaves its tasks due again, while what a task changes commits durably with its `done`, in its own transaction.
 */
export async function claimDueTasks(db: Kysely<Database>, workerId: string, now: Date, leaseUntil: Date, limit: number) {
  return db.transaction().execute(async (trx) => {
    await sql`SET LOCAL synchronous_commit TO OFF`.execute(trx);
    const claimed = await trx
      .updateTable('task')
      .set((eb) => ({
        state: 'doing',
        locked_by: workerId,
        locked_until: leaseUntil,
        attempts: eb('attempts', '+', 1),
        last_modification_date: now,
      }))
      .where('task_id', 'in', (eb) =>
        eb
          .selectFrom('task')
          .select('task_id')
          .where((w) =>
            w.or([
              w.and([w('state', '=', 'todo'), w('execution_date', '<=', now)]),
              w.and([w('state', '=', 'doing'), w('locked_until', '<', now)]),
            ]),
          )
          .orderBy('execution_date')
          .orderBy('task_id')
          .limit(limit)
          .forUpdate()
          .skipLocked(),
      )
      .returningAll()
      .execute();
    return claimed.sort((a, b) => a.execution_date.getTime() - b.execution_date.getTime() || a.task_id - b.task_id);
  });
}

/** Gives claimed tasks that were never started back to the queue, as if never claimed (a worker that stops). */
export async function releaseTasks(db: Executor, workerId: string, taskIds: number[], now: Date) {
  if (taskIds.length === 0) return;
  await db
    .updateTable('task')
    .set((eb) => ({
      state: 'todo',
      locked_by: null,
      locked_until: null,
      attempts: eb('attempts', '-', 1),
      last_modification_date: now,
    }))
    .where('task_id', 'in', taskIds)
    .where('state', '=', 'doing')
    .where('locked_by', '=', workerId)
    .execute();
}

/** Locks a task this worker still holds; `undefined` when its lease was lost to another worker. */
export async function lockHeldTask(trx: Transaction<Database>, taskId: number, workerId: string) {
  return (await lockHeldTasks(trx, [taskId], workerId))[0];
}

/** The tasks of `taskIds` this worker still holds, locked in id order until the transaction ends. */
export async function lockHeldTasks(trx: Transaction<Database>, taskIds: number[], workerId: string) {
  return trx
    .selectFrom('task')
    .selectAll()
    .where('task_id', 'in', taskIds)
    .where('state', '=', 'doing')
    .where('locked_by', '=', workerId)
    .orderBy('task_id')
    .forUpdate()
    .execute();
}

/**
 * Ends a task this worker applied or failed. Once done, its sealed change (if any) is erased: nothing of it outlives
 * its use. A task in error keeps it, to be relaunched by resetTaskState.
 */
export async function finishTask(
  trx: Transaction<Database>,
  taskId: number,
  outcome: { state: 'done' | 'error'; description: string; lastError: string | null; now: Date },
) {
  await finishTasks(trx, [taskId], outcome);
}

/** `finishTask` for several tasks with the same outcome, in one statement. */
export async function finishTasks(
  trx: Transaction<Database>,
  taskIds: number[],
  outcome: { state: 'done' | 'error'; description: string; lastError: string | null; now: Date },
) {
  if (taskIds.length === 0) return;
  await trx
    .updateTable('task')
    .set({
      state: outcome.state,
      progress: outcome.state === 'done' ? 100 : sql<number>`progress`,
      description: outcome.description,
      last_error: outcome.lastError,
      end_date: outcome.now,
      last_modification_date: outcome.now,
      locked_by: null,
      locked_until: null,
      ...(outcome.state === 'done' ? { payload: sql<string>`payload - 'change' - 'changeBinding'` } : {}),
    })
    .where('task_id', 'in', taskIds)
    .execute();
}

/** A task held for validation may run now. */
export async function releaseTask(trx: Transaction<Database>, taskId: number, description: string, now: Date) {
  await trx
    .updateTable('task')
    .set({ state: 'todo', last_modification_date: now, description })
    .where('task_id', '=', taskId)
    .where('state', '=', 'waitingTodo')
    .execute();
}

/** Cancels a task held for validation and erases its sealed change; returns it, or nothing if it was not held. */
export async function cancelHeldTask(trx: Transaction<Database>, taskId: number, description: string, now: Date) {
  return trx
    .updateTable('task')
    .set({
      state: 'canceled',
      description,
      end_date: now,
      last_modification_date: now,
      payload: sql<string>`payload - 'change' - 'changeBinding'`,
    })
    .where('task_id', '=', taskId)
    .where('state', '=', 'waitingTodo')
    .returningAll()
    .executeTakeFirst();
}

/** Replaces a task's payload (the sealed change is bound to the task id, known once the task is written). */
export async function setTaskPayload(trx: Transaction<Database>, taskId: number, payload: Record<string, unknown>) {
  return trx
    .updateTable('task')
    .set({ payload: JSON.stringify(payload) })
    .where('task_id', '=', taskId)
    .returningAll()
    .executeTakeFirstOrThrow();
}
