import type { TaskHandler } from '../../core/task-handler.js';
import { updateEntry } from './repository.js';
import { WHITELIST_TASKS } from './api.js';

const entryId = (payload: Record<string, unknown>): number => {
  const id = payload.whitelistId;
  if (typeof id !== 'number') throw new Error('task payload has no whitelistId');
  return id;
};

/** The worker's side of the whitelist: `enabling` → `enabled`, `removing` → `removed`. */
export const whitelistTaskHandlers: Array<[string, TaskHandler]> = [
  [
    WHITELIST_TASKS.add,
    {
      // A removal requested meanwhile wins: the entry stays `removing`. From `error`: a task relaunched by resetTaskState.
      apply: async (trx, task, { now }) =>
        void (await updateEntry(trx, entryId(task.payload), { state: 'enabled', now }, ['enabling', 'error'])),
      onError: async (trx, task, { now }) =>
        void (await updateEntry(trx, entryId(task.payload), { state: 'error', now }, ['enabling'])),
      // Never validated: the entry never bypassed anything, and goes.
      onCancel: async (trx, task, { now }) =>
        void (await updateEntry(trx, entryId(task.payload), { state: 'removed', now }, ['enabling'])),
    },
  ],
  [
    WHITELIST_TASKS.remove,
    {
      apply: async (trx, task, { now }) =>
        void (await updateEntry(trx, entryId(task.payload), { state: 'removed', now }, ['removing'])),
    },
  ],
  [
    WHITELIST_TASKS.change,
    {
      // The description was written with the request; nothing is left to apply on our side.
      apply: async () => undefined,
    },
  ],
];
