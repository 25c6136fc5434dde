import type { Transaction } from 'kysely';
import type { Database, TaskRow, UserRow } from '../../db/types.js';
import type { Actor } from '../../http/actor.js';
import { contexts } from '../../security/contexts.js';
import type { SecretBox } from '../../security/secret-box.js';
import { recordAudit } from '../audit/repository.js';
import { createOperation, decideApproval, type Approval, type ApprovalPolicy } from '../operations/service.js';
import { insertTask, setTaskPayload, type NewTaskInput } from '../tasks/repository.js';

export interface ChangeRecord {
  serviceName: string;
  task: Omit<NewTaskInput, 'serviceName' | 'state' | 'executionDate'>;
  /**
   * What the task's handler needs and nobody else may read (a password hash, a TOTP secret): sealed into the task's
   * payload, bound to the task id, erased once applied or canceled.
   */
  secret?: object;
  audit: { type: string; actor: Actor; userId?: number | null; data?: Record<string, unknown> };
  /** Whether the change waits for operation validation first. */
  approval?: {
    policy: ApprovalPolicy;
    /** Who receives the token: this user when he is a reachable token validator, else the service's validators. */
    tokenTo: UserRow | null;
    /** The user the change is about, shown on the operation. */
    userId: number | null;
    /** One line for the SMS. */
    summary: string;
  };
}

export interface RecordedChange {
  task: TaskRow;
  operationId: number | null;
  approval: Approval;
}

/**
 * Every change is written the same way, in the caller's transaction: its task (`todo`, or `waitingTodo` behind an
 * operation to validate), the sealed part of its payload, the operation and its SMS, and the audit event. The row the
 * change is about is the caller's, written in the same transaction: all of it commits together or not at all.
 */
export async function recordChange(
  trx: Transaction<Database>,
  box: SecretBox,
  now: Date,
  record: ChangeRecord,
): Promise<RecordedChange> {
  const { approval, recipients } = record.approval
    ? await decideApproval(trx, {
        serviceName: record.serviceName,
        policy: record.approval.policy,
        tokenTo: record.approval.tokenTo,
        now,
      })
    : { approval: 'none' as const, recipients: [] };
  const waits = approval === 'sms' || approval === 'operator';
  let task = await insertTask(trx, {
    ...record.task,
    serviceName: record.serviceName,
    state: waits ? 'waitingTodo' : 'todo',
    executionDate: now,
  });
  if (record.secret !== undefined) {
    const sealed = box.seal(JSON.stringify(record.secret), contexts.pendingChange(task.task_id));
    task = await setTaskPayload(trx, task.task_id, { ...task.payload, change: sealed, changeBinding: 'task' });
  }
  let operationId: number | null = null;
  if (waits) {
    const op = await createOperation(trx, box, now, {
      serviceName: record.serviceName,
      taskId: task.task_id,
      kind: task.name,
      userId: record.approval!.userId,
      requestedBy: record.audit.actor.login ?? 'api',
      requester: record.approval!.tokenTo,
      summary: record.approval!.summary,
      recipients,
      approval: approval === 'operator' ? 'operator' : 'sms',
    });
    operationId = op.operation_id;
  }
  await recordAudit(trx, {
    serviceName: record.serviceName,
    type: record.audit.type,
    actor: record.audit.actor.login,
    ip: record.audit.actor.ip,
    userId: record.audit.userId ?? null,
    data: { ...record.audit.data, taskId: task.task_id, operationId, approval },
  });
  return { task, operationId, approval };
}
