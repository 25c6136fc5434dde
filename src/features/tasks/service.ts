import type { Kysely, Transaction } from 'kysely';
import type { HeldTasks } from '../operations/api.js';
import { toOvhDate, type Clock } from '../../clock.js';
import type { Database, TaskRow } from '../../db/types.js';
import { badRequest, invalidField, taskNotFound } from '../../http/errors.js';
import type { TaskDto } from '../../http/schemas.js';
import * as repo from './repository.js';

/** The API shape of a task: every field of OVH's `dedicatedCloud.Task`, nothing of the worker's bookkeeping. */
export function toTaskDto(row: TaskRow): TaskDto {
  return {
    createdBy: row.created_by,
    createdFrom: row.created_from,
    datacenterId: row.datacenter_id,
    description: row.description,
    endDate: toOvhDate(row.end_date),
    executionDate: toOvhDate(row.execution_date),
    filerId: row.filer_id,
    hostId: row.host_id,
    lastModificationDate: toOvhDate(row.last_modification_date),
    maintenanceDateFrom: toOvhDate(row.maintenance_date_from),
    maintenanceDateTo: toOvhDate(row.maintenance_date_to),
    name: row.name,
    network: row.network,
    networkAccessId: row.network_access_id,
    orderId: row.order_id,
    parentTaskId: row.parent_task_id,
    progress: row.progress,
    state: row.state,
    taskId: row.task_id,
    type: row.type,
    userId: row.user_id,
    vlanId: row.vlan_id,
  };
}

/** The object a task route is under (`…/user/{userId}/task/…`, `…/allowedNetwork/{networkAccessId}/task/…`). */
export interface TaskScope {
  userId?: number;
  networkAccessId?: number;
}
const inScope = (row: TaskRow, scope: TaskScope) =>
  (scope.userId === undefined || row.user_id === scope.userId) &&
  (scope.networkAccessId === undefined || row.network_access_id === scope.networkAccessId);

/** Undoes, in the canceling transaction, what the request of a task marked (the task handler's `onCancel`). */
export type TaskCanceled = (trx: Transaction<Database>, task: TaskRow, now: Date) => Promise<void>;

export class TaskService implements HeldTasks {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly canceled: TaskCanceled = async () => undefined,
  ) {}

  release(trx: Transaction<Database>, taskId: number, description: string, now: Date): Promise<void> {
    return repo.releaseTask(trx, taskId, description, now);
  }

  async cancel(trx: Transaction<Database>, taskId: number, description: string, now: Date): Promise<void> {
    const task = await repo.cancelHeldTask(trx, taskId, description, now);
    if (task) await this.canceled(trx, task, now);
  }

  list(serviceName: string, filter: repo.TaskFilter): Promise<number[]> {
    return repo.listTaskIds(this.db, serviceName, filter);
  }

  async get(serviceName: string, taskId: number, scope: TaskScope = {}): Promise<TaskDto> {
    const row = await repo.findTask(this.db, serviceName, taskId);
    if (!row || !inScope(row, scope)) throw taskNotFound(taskId);
    return toTaskDto(row);
  }

  /** "Relaunch operation currently in error state". */
  async resetTaskState(serviceName: string, taskId: number, reason: string, scope: TaskScope = {}): Promise<TaskDto> {
    return this.db.transaction().execute(async (trx) => {
      const task = await repo.lockTask(trx, serviceName, taskId);
      if (!task || !inScope(task, scope)) throw taskNotFound(taskId);
      if (task.state !== 'error')
        throw badRequest(`Task ${taskId} is in state ${task.state}: only a task in error can be relaunched`);
      const now = this.clock.now();
      const updated = await repo.updateTask(trx, taskId, {
        state: 'todo',
        progress: 0,
        description: `Relaunched: ${reason}`,
        last_error: null,
        end_date: null,
        // A relaunch gets a fresh budget: a task given up after too many attempts would otherwise fail again at once.
        attempts: 0,
        execution_date: now,
        last_modification_date: now,
      });
      return toTaskDto(updated);
    });
  }

  /** Moves a task that has not started yet; a maintenance window, when the task has one, bounds the new date. */
  async changeMaintenanceExecutionDate(serviceName: string, taskId: number, executionDate: string, scope: TaskScope = {}) {
    const date = new Date(executionDate);
    if (Number.isNaN(date.getTime())) throw invalidField('executionDate', 'is not a valid datetime');
    return this.db.transaction().execute(async (trx) => {
      const task = await repo.lockTask(trx, serviceName, taskId);
      if (!task || !inScope(task, scope)) throw taskNotFound(taskId);
      if (task.state !== 'todo' && task.state !== 'waitingTodo') {
        throw badRequest(`Task ${taskId} is in state ${task.state}: only a task that has not started can be rescheduled`);
      }
      const now = this.clock.now();
      if (date.getTime() < now.getTime() - 60_000) throw invalidField('executionDate', 'is in the past');
      if (
        (task.maintenance_date_from && date < task.maintenance_date_from) ||
        (task.maintenance_date_to && date > task.maintenance_date_to)
      ) {
        throw invalidField('executionDate', 'is outside the maintenance window of the task');
      }
      const updated = await repo.updateTask(trx, taskId, { execution_date: date, last_modification_date: now });
      return toTaskDto(updated);
    });
  }
}
