import type { TaskRow } from '../../db/types.js';
import { contexts } from '../../security/contexts.js';
import type { SecretBox } from '../../security/secret-box.js';

/**
 * A change a task will apply to a user (a new password hash, a new TOTP secret, a generated password to send). It
 * waits in the task's payload sealed with AES-256-GCM, bound to the task, and is erased once applied or canceled.
 */
export interface PendingChange {
  passwordHash?: string;
  totpSecret?: string;
  /** A generated password, sent to the user once the change is applied. */
  sendPassword?: string;
  /** The session that asked: it survives the "other sessions end" rule. */
  keepSessionId?: number;
  /** What reaches or empowers the user (`changeProperties`): applied only by the task, once validated. */
  properties?: { phoneNumber?: string; email?: string; tokenValidator?: boolean };
}

/** The context the task's sealed change was made under: its task id, or the user and task name before that. */
export function pendingChangeContext(task: Pick<TaskRow, 'task_id' | 'name' | 'payload'>): string {
  if (task.payload.changeBinding === 'task') return contexts.pendingChange(task.task_id);
  const userId = task.payload.userId;
  if (typeof userId !== 'number') throw new Error('task payload has no userId');
  return contexts.legacyPendingChange(userId, task.name);
}

export function openChange(box: SecretBox, task: Pick<TaskRow, 'task_id' | 'name' | 'payload'>): PendingChange {
  const sealed = task.payload.change;
  if (typeof sealed !== 'string') return {};
  return JSON.parse(box.open(sealed, pendingChangeContext(task))) as PendingChange;
}
