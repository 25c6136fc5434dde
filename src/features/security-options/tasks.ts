import type { TaskHandler } from '../../core/task-handler.js';
import type { AuditLog } from '../audit/api.js';
import { ENABLE_SECURITY_OPTION } from './api.js';
import { enableAdvancedSecurity } from './repository.js';

/** The worker's side of security options: the option is on once its task is done. */
export function securityOptionTaskHandlers(audit: AuditLog): Array<[string, TaskHandler]> {
  return [
    [
      ENABLE_SECURITY_OPTION,
      {
        async apply(trx, task) {
          if (task.payload.option !== 'advancedSecurity') throw new Error(`cannot enable ${String(task.payload.option)}`);
          if (await enableAdvancedSecurity(trx, task.service_name)) {
            await audit.record(trx, {
              serviceName: task.service_name,
              type: 'securityOption.enabled',
              actor: task.created_by,
              ip: null,
              userId: null,
              data: { option: 'advancedSecurity', taskId: task.task_id },
            });
          }
        },
      },
    ],
  ];
}
