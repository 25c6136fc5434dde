import type { TaskHandler, TaskHandlers } from '../core/task-handler.js';
import { allowedNetworkTaskHandlers } from '../features/allowed-network/tasks.js';
import { userTaskHandlers, type UserTaskDeps } from '../features/users/tasks.js';
import { whitelistTaskHandlers } from '../features/whitelist/tasks.js';
import { securityOptionTaskHandlers } from '../features/security-options/tasks.js';

/** Every task name the worker knows, with its handler; the handlers that reach other features are handed them. */
export function taskHandlers(deps: UserTaskDeps): TaskHandlers {
  return new Map<string, TaskHandler>([
    ...whitelistTaskHandlers,
    ...userTaskHandlers(deps),
    ...allowedNetworkTaskHandlers,
    ...securityOptionTaskHandlers(deps.audit),
    // The change is written with the request; the task records it.
    ['changePropertiesDedicatedCloud', { apply: async () => undefined }],
  ]);
}
