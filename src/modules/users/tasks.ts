import { contexts } from '../../security/contexts.js';
import type { Transaction } from 'kysely';
import { toOvhDate } from '../../clock.js';
import type { Database, TaskRow } from '../../db/types.js';
import { enqueueMessage } from '../../notify/outbox.js';
import type { TaskContext, TaskHandler } from '../../tasks/handlers.js';
import { recordAudit } from '../audit/repository.js';
import { armApproval, createOperation } from '../operations/service.js';
import { eraseTaskChange } from '../tasks/repository.js';
import { isActiveUser } from './dto.js';
import { openChange, type PendingChange } from './pending-change.js';
import { addPasswordHistory, updateUser, updateUserIf } from './repository.js';
import { USER_TASKS } from './service.js';
import { endUserSessions } from './sessions-repository.js';

const userIdOf = (task: TaskRow): number => {
  const id = task.payload.userId;
  if (typeof id !== 'number') throw new Error('task payload has no userId');
  return id;
};

const changeOf = (task: TaskRow, ctx: TaskContext): PendingChange => openChange(ctx.box, task);

async function loadUser(trx: Transaction<Database>, userId: number) {
  return trx.selectFrom('pcc_user').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();
}

/** Tells the user by SMS (a confirmed number) or e-mail that something changed on the account. */
async function tellUser(trx: Transaction<Database>, ctx: TaskContext, userId: number, text: string) {
  const user = await loadUser(trx, userId);
  const body = `PCC ${user.service_name}: ${text} (${toOvhDate(ctx.now)}). If it was not you, tell your administrator.`;
  if (user.phone_number && user.phone_confirmed) {
    await enqueueMessage(
      trx,
      ctx.box,
      { serviceName: user.service_name, channel: 'sms', recipient: user.phone_number, body, operationId: null },
      ctx.now,
    );
  } else if (user.email) {
    await enqueueMessage(
      trx,
      ctx.box,
      { serviceName: user.service_name, channel: 'email', recipient: user.email, body, operationId: null },
      ctx.now,
    );
  }
}

async function applyPassword(trx: Transaction<Database>, task: TaskRow, ctx: TaskContext, change: PendingChange) {
  const userId = userIdOf(task);
  const user = await loadUser(trx, userId);
  if (change.passwordHash) {
    await updateUser(trx, userId, { password_hash: change.passwordHash, password_changed_at: ctx.now });
    await addPasswordHistory(trx, user.service_name, userId, change.passwordHash, ctx.now);
  }
  if (change.sendPassword && user.email) {
    await enqueueMessage(
      trx,
      ctx.box,
      {
        serviceName: user.service_name,
        channel: 'email',
        recipient: user.email,
        body: `PCC ${user.service_name}: the password of ${user.name} is ${change.sendPassword}`,
        operationId: null,
      },
      ctx.now,
    );
  }
}

const credentialsChange: TaskHandler = {
  async apply(trx, task, ctx) {
    const userId = userIdOf(task);
    const change = changeOf(task, ctx);
    await applyPassword(trx, task, ctx, change);
    if (change.totpSecret) {
      await updateUser(trx, userId, {
        totp_secret_ciphertext: ctx.box.seal(change.totpSecret, contexts.totpSecret(userId)),
        totp_enabled_at: ctx.now,
      });
      const user = await loadUser(trx, userId);
      // "If one user changes his password, all users will have 2FA enabled."
      await trx.updateTable('service').set({ two_fa_state: 'enabled' }).where('service_name', '=', user.service_name).execute();
    }
    const ended = await endUserSessions(trx, userId, 'credentialsChanged', ctx.now, change.keepSessionId);
    await eraseTaskChange(trx, task.task_id);
    const user = await loadUser(trx, userId);
    await recordAudit(trx, {
      serviceName: user.service_name,
      type: 'user.credentialsChanged',
      actor: task.created_by,
      ip: null,
      userId,
      data: {
        taskId: task.task_id,
        password: Boolean(change.passwordHash),
        totp: Boolean(change.totpSecret),
        sessionsEnded: ended,
      },
    });
    await tellUser(
      trx,
      ctx,
      userId,
      change.totpSecret ? 'your password and 2FA secret were changed' : 'your password was changed',
    );
  },
};

/** The worker's side of users: each applies the change its task stands for. */
export const userTaskHandlers: Array<[string, TaskHandler]> = [
  [
    USER_TASKS.create,
    {
      async apply(trx, task, ctx) {
        await applyPassword(trx, task, ctx, changeOf(task, ctx));
        await updateUser(trx, userIdOf(task), { state: 'delivered' });
        await eraseTaskChange(trx, task.task_id);
      },
      onError: async (trx, task) => void (await updateUser(trx, userIdOf(task), { state: 'error' })),
      // A creation that never happens must not keep the name taken (a user `creating` forever).
      onCancel: async (trx, task, { now }) => void (await updateUser(trx, userIdOf(task), { deleted_at: now })),
    },
  ],
  [
    USER_TASKS.remove,
    {
      async apply(trx, task, ctx) {
        const userId = userIdOf(task);
        await updateUser(trx, userId, { deleted_at: ctx.now });
        await endUserSessions(trx, userId, 'userRemoved', ctx.now);
      },
      // A removal that never happens leaves the user as he was, not `deleting` forever.
      onCancel: async (trx, task) =>
        void (await updateUserIf(trx, userIdOf(task), { state: 'delivered' }, { state: 'deleting' })),
    },
  ],
  [
    USER_TASKS.changeProperties,
    {
      async apply(trx, task, ctx) {
        const { properties } = changeOf(task, ctx);
        if (!properties) return;
        const userId = userIdOf(task);
        const user = await loadUser(trx, userId);
        const phone = properties.phoneNumber !== undefined && properties.phoneNumber !== user.phone_number;
        await updateUser(trx, userId, {
          ...(properties.email !== undefined ? { email: properties.email } : {}),
          ...(properties.tokenValidator !== undefined ? { is_token_validator: properties.tokenValidator } : {}),
          // A new number is a new authenticator: it receives nothing until its owner confirms it.
          ...(phone ? { phone_number: properties.phoneNumber!, phone_confirmed: false } : {}),
        });
        await eraseTaskChange(trx, task.task_id);
        if (properties.tokenValidator && !phone && user.phone_confirmed && isActiveUser(user)) {
          await armApproval(trx, user.service_name, ctx.now);
        }
        if (phone) {
          await createOperation(trx, ctx.box, ctx.now, {
            serviceName: user.service_name,
            taskId: null,
            kind: 'confirmPhoneNumber',
            userId,
            requestedBy: task.created_by ?? 'api',
            requester: null,
            summary: `confirm the phone number of ${user.name}`,
            recipients: [properties.phoneNumber!],
          });
        }
      },
    },
  ],
  ['confirmPhoneNumberUser', { apply: async () => undefined }],
  [USER_TASKS.changePassword, credentialsChange],
  [USER_TASKS.changeCredentials, credentialsChange],
  [
    USER_TASKS.enable,
    {
      apply: async (trx, task) => void (await updateUser(trx, userIdOf(task), { activation_state: 'enabled' })),
      onCancel: async (trx, task) =>
        void (await updateUserIf(trx, userIdOf(task), { activation_state: 'disabled' }, { activation_state: 'toEnable' })),
    },
  ],
  [
    USER_TASKS.disable,
    {
      async apply(trx, task, ctx) {
        await updateUser(trx, userIdOf(task), { activation_state: 'disabled' });
        await endUserSessions(trx, userIdOf(task), 'userDisabled', ctx.now);
      },
      onCancel: async (trx, task) =>
        void (await updateUserIf(trx, userIdOf(task), { activation_state: 'enabled' }, { activation_state: 'toDisable' })),
    },
  ],
];
