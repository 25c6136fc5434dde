import type { Kysely, Transaction } from 'kysely';
import type { Database, UserRow } from '../../db/types.js';
import type { Actor } from '../../http/actor.js';
import { badRequest } from '../../http/errors.js';
import type { TaskDto } from '../../http/schemas.js';
import type { Approvals, Operations } from '../operations/api.js';
import type { ChangeRecorder } from '../tasks/api.js';
import { CONFIRM_PHONE_NUMBER, USER_TASKS, isActiveUser } from './api.js';
import * as repo from './repository.js';

/**
 * A new phone number is a new authenticator: it receives a token by SMS once the change that sets it applies, and gets operation tokens or reset
 * codes only once its owner typed that token back (`confirmPhoneNumber`, NIST SP 800-63B §5.1.3.3).
 */
export class PhoneConfirmation {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly operations: Operations,
    private readonly changes: ChangeRecorder,
  ) {}

  async confirm(user: UserRow, token: string, actor: Actor): Promise<TaskDto> {
    // Only a user who exists: a creation still waiting for validation has sent no token, and must not make its number
    // a confirmed one (nor its token validator a reachable one) before it applies.
    if (user.state !== 'delivered' || user.deleted_at !== null) {
      throw badRequest(`User ${user.name} is not delivered: nothing to confirm`);
    }
    const op = await this.operations.latestPending(user.service_name, user.user_id, CONFIRM_PHONE_NUMBER);
    if (!op) throw badRequest(`No phone number confirmation is pending for user ${user.name}`);
    let task: TaskDto | undefined;
    await this.operations.validate(
      user.service_name,
      op.operation_id,
      token,
      { userId: null, actor: actor.login ?? 'api' },
      actor.ip ?? '',
      async (trx) => {
        // Read again under lock: the user may have changed since the request started (a removal applied).
        const current = await repo.lockUser(trx, user.service_name, user.user_id);
        if (!current || current.state !== 'delivered' || current.deleted_at !== null) {
          throw badRequest(`User ${user.name} is not delivered: nothing to confirm`);
        }
        await repo.updateUser(trx, user.user_id, { phone_confirmed: true });
        // A token validator who can now receive tokens arms the service's gate for good.
        if (current.is_token_validator && isActiveUser(current)) await this.operations.arm(trx, user.service_name);
        ({ task } = await this.changes.record(trx, {
          serviceName: user.service_name,
          task: {
            name: USER_TASKS.confirmPhoneNumber,
            type: 'user',
            description: `Phone number of ${user.name} confirmed`,
            createdBy: actor.login,
            createdFrom: 'api',
            userId: user.user_id,
            payload: { userId: user.user_id },
          },
          audit: { type: 'user.phoneNumberConfirmed', actor, userId: user.user_id },
        }));
      },
    );
    return task!;
  }
}

/** Sends the confirmation token to the number, in the caller's transaction (a task handler uses it too). */
export async function sendPhoneConfirmation(
  approvals: Approvals,
  trx: Transaction<Database>,
  user: UserRow,
  requestedBy: string,
  phoneNumber: string | null,
): Promise<void> {
  if (!phoneNumber) return;
  await approvals.open(trx, {
    serviceName: user.service_name,
    taskId: null,
    kind: CONFIRM_PHONE_NUMBER,
    userId: user.user_id,
    requestedBy,
    summary: `confirm the phone number of ${user.name}`,
    recipients: [phoneNumber],
  });
}
