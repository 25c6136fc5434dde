import { userTaskHandlers } from '../modules/users/tasks.js';
import { allowedNetworkTaskHandlers } from '../modules/allowed-network/tasks.js';
import { whitelistTaskHandlers } from '../modules/whitelist/tasks.js';
import type { TaskHandler, TaskHandlers } from './handlers.js';

/** Every task name the worker knows, with its handler. */
export function taskHandlers(): TaskHandlers {
  return new Map<string, TaskHandler>([
    ...whitelistTaskHandlers,
    ...userTaskHandlers,
    ...allowedNetworkTaskHandlers,
    // The change is written with the request; the task records it.
    ['changePropertiesDedicatedCloud', { apply: async () => undefined }],
  ]);
}
