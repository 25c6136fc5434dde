import type { TaskRow } from '../../db/types.js';
import { pendingChangeContext } from '../../security/contexts.js';
import type { SecretBox } from '../../security/secret-box.js';
import type { PendingChange } from './api.js';

/** The change sealed in a task's payload (see `PendingChange`); `{}` when it has none. */
export function openChange(box: SecretBox, task: Pick<TaskRow, 'task_id' | 'name' | 'payload'>): PendingChange {
  const sealed = task.payload.change;
  if (typeof sealed !== 'string') return {};
  return JSON.parse(box.open(sealed, pendingChangeContext(task))) as PendingChange;
}
