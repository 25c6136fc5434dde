import type { Transaction } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Database } from '../../db/types.js';
import { contexts } from '../../security/contexts.js';
import type { SecretBox } from '../../security/secret-box.js';
import type { AuditLog } from '../audit/api.js';
import type { Approvals, RecipientResolver } from '../operations/api.js';
import type { ChangeRecord, ChangeRecorder, RecordedChange } from './api.js';
import { insertTask, setTaskPayload } from './repository.js';
import { toTaskDto } from './service.js';

/**
 * Every change is written the same way, in the caller's transaction: its task (`todo`, or `waitingTodo` behind an
 * operation to validate), the sealed part of its payload, the operation and its SMS, and the audit event. The row the
 * change is about is the caller's, written in the same transaction: all of it commits together or not at all.
 */
export class ChangeRecorderService implements ChangeRecorder {
  constructor(
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly approvals: Approvals,
    private readonly recipients: RecipientResolver,
    private readonly audit: AuditLog,
  ) {}

  async record(trx: Transaction<Database>, record: ChangeRecord): Promise<RecordedChange> {
    const now = this.clock.now();
    const gate = record.approval;
    const recipients = gate ? await this.recipients(trx, record.serviceName, gate.tokenTo) : [];
    const approval = gate
      ? await this.approvals.decide(trx, { serviceName: record.serviceName, policy: gate.policy, recipients })
      : 'none';
    const waits = approval === 'sms' || approval === 'operator';
    let task = await insertTask(trx, {
      ...record.task,
      serviceName: record.serviceName,
      state: waits ? 'waitingTodo' : 'todo',
      executionDate: now,
    });
    if (record.secret !== undefined) {
      const sealed = this.box.seal(JSON.stringify(record.secret), contexts.pendingChange(task.task_id));
      task = await setTaskPayload(trx, task.task_id, { ...task.payload, change: sealed, changeBinding: 'task' });
    }
    let operationId: number | null = null;
    if (waits) {
      const op = await this.approvals.open(trx, {
        serviceName: record.serviceName,
        taskId: task.task_id,
        kind: task.name,
        userId: gate!.userId,
        requestedBy: record.audit.actor.login ?? 'api',
        summary: gate!.summary,
        recipients,
        tokenToUserId: gate!.tokenTo?.user_id ?? null,
        approval: approval === 'operator' ? 'operator' : 'sms',
      });
      operationId = op.operation_id;
    }
    await this.audit.record(trx, {
      serviceName: record.serviceName,
      type: record.audit.type,
      actor: record.audit.actor.login,
      ip: record.audit.actor.ip,
      userId: record.audit.userId ?? null,
      data: { ...record.audit.data, taskId: task.task_id, operationId, approval },
    });
    return { task: toTaskDto(task), taskId: task.task_id, state: task.state, operationId, approval };
  }
}
