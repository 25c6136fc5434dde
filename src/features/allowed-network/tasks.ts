import type { TaskHandler } from '../../core/task-handler.js';
import { markAllowed, update } from './repository.js';
import { ALLOWED_NETWORK_TASKS } from './api.js';

const idOf = (payload: Record<string, unknown>) => {
  const id = payload.networkAccessId;
  if (typeof id !== 'number') throw new Error('task payload has no networkAccessId');
  return id;
};

export const allowedNetworkTaskHandlers: Array<[string, TaskHandler]> = [
  [ALLOWED_NETWORK_TASKS.add, { apply: async () => undefined }],
  [ALLOWED_NETWORK_TASKS.update, { apply: async (trx, task, { now }) => markAllowed(trx, idOf(task.payload), now) }],
  [
    ALLOWED_NETWORK_TASKS.remove,
    { apply: async (trx, task, { now }) => update(trx, idOf(task.payload), { deleted_at: now, updated_at: now }) },
  ],
];
