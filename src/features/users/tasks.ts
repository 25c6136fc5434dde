import type { Transaction } from 'kysely';
import { toOvhDate } from '../../clock.js';
import type { TaskContext, TaskHandler } from '../../core/task-handler.js';
import type { Database, TaskRow } from '../../db/types.js';
import { enqueueMessage, type NewMessage } from '../../notify/outbox.js';
import { contexts } from '../../security/contexts.js';
import type { AuditLog } from '../audit/api.js';
import type { Approvals } from '../operations/api.js';
import type { Sessions } from '../secure/api.js';
import { USER_TASKS, isActiveUser, type PendingChange } from './api.js';
import { openChange } from './pending-change.js';
import { sendPhoneConfirmation } from './phone-confirmation.js';
import * as repo from './repository.js';

/** What the handlers of user tasks are handed: the gate (phone confirmations), the sessions, the audit log. */
export interface UserTaskDeps {
  approvals: Approvals;
  sessions: Sessions;
  audit: AuditLog;
}

const userIdOf = (task: TaskRow): number => {
  const id = task.payload.userId;
  if (typeof id !== 'number') throw new Error('task payload has no userId');
  return id;
};

const changeOf = (task: TaskRow, ctx: TaskContext): PendingChange => openChange(ctx.box, task);

async function loadUser(trx: Transaction<Database>, userId: number) {
  const user = await repo.findUserById(trx, userId);
  if (!user) throw new Error(`user ${userId} does not exist`);
  return user;
}

const message = (ctx: TaskContext, trx: Transaction<Database>, m: NewMessage) => enqueueMessage(trx, ctx.box, m, ctx.now);

/** Tells the user by SMS (a confirmed number) or e-mail that something changed on the account. */
async function tellUser(trx: Transaction<Database>, ctx: TaskContext, userId: number, text: string) {
  const user = await loadUser(trx, userId);
  const body = `PCC ${user.service_name}: ${text} (${toOvhDate(ctx.now)}). If it was not you, tell your administrator.`;
  const to = (channel: 'sms' | 'email', recipient: string) =>
    message(ctx, trx, { serviceName: user.service_name, channel, recipient, body, operationId: null });
  if (user.phone_number && user.phone_confirmed) await to('sms', user.phone_number);
  else if (user.email) await to('email', user.email);
}

async function applyPassword(trx: Transaction<Database>, task: TaskRow, ctx: TaskContext, change: PendingChange) {
  const userId = userIdOf(task);
  const user = await loadUser(trx, userId);
  if (change.passwordHash) {
    await repo.updateUser(trx, userId, { password_hash: change.passwordHash, password_changed_at: ctx.now });
    await repo.addPasswordHistory(trx, user.service_name, userId, change.passwordHash, ctx.now);
  }
  if (change.sendPassword && user.email) {
    await message(ctx, trx, {
      serviceName: user.service_name,
      channel: 'email',
      recipient: user.email,
      body: `PCC ${user.service_name}: the password of ${user.name} is ${change.sendPassword}`,
      operationId: null,
    });
  }
}

/** The worker's side of users: each handler applies the change its task stands for. */
export function userTaskHandlers({ approvals, sessions, audit }: UserTaskDeps): Array<[string, TaskHandler]> {
  const credentialsChange: TaskHandler = {
    async apply(trx, task, ctx) {
      const userId = userIdOf(task);
      const change = changeOf(task, ctx);
      await applyPassword(trx, task, ctx, change);
      const user = await loadUser(trx, userId);
      if (change.totpSecret) {
        await repo.updateUser(trx, userId, {
          totp_secret_ciphertext: ctx.box.seal(change.totpSecret, contexts.totpSecret(userId)),
          totp_enabled_at: ctx.now,
        });
        // "If one user changes his password, all users will have 2FA enabled."
        await repo.enableTwoFaForService(trx, user.service_name);
      }
      const ended = await sessions.endForUser(trx, userId, 'credentialsChanged', ctx.now, change.keepSessionId);
      await audit.record(trx, {
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

  return [
    [
      USER_TASKS.create,
      {
        async apply(trx, task, ctx) {
          await applyPassword(trx, task, ctx, changeOf(task, ctx));
          await repo.updateUser(trx, userIdOf(task), { state: 'delivered' });
          // Only now does the number receive its confirmation token: a creation still waiting for validation (or
          // canceled) never made a phone number confirmable, let alone a token validator.
          const user = await loadUser(trx, userIdOf(task));
          if (user.phone_number) {
            await sendPhoneConfirmation(approvals, trx, user, task.created_by ?? 'api', user.phone_number);
          }
        },
        onError: async (trx, task) => void (await repo.updateUser(trx, userIdOf(task), { state: 'error' })),
        // A creation that never happens must not keep the name taken (a user `creating` forever).
        onCancel: async (trx, task, { now }) => void (await repo.updateUser(trx, userIdOf(task), { deleted_at: now })),
      },
    ],
    [
      USER_TASKS.remove,
      {
        async apply(trx, task, ctx) {
          const userId = userIdOf(task);
          await repo.updateUser(trx, userId, { deleted_at: ctx.now });
          await sessions.endForUser(trx, userId, 'userRemoved', ctx.now);
        },
        // A removal that never happens leaves the user as he was, not `deleting` forever.
        onCancel: async (trx, task) =>
          void (await repo.updateUserIf(trx, userIdOf(task), { state: 'delivered' }, { state: 'deleting' })),
        // Failed for good (a removal that cannot apply): the user stays as he was, not `deleting` forever.
        onError: async (trx, task) =>
          void (await repo.updateUserIf(trx, userIdOf(task), { state: 'delivered' }, { state: 'deleting' })),
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
          await repo.updateUser(trx, userId, {
            ...(properties.email !== undefined ? { email: properties.email } : {}),
            ...(properties.tokenValidator !== undefined ? { is_token_validator: properties.tokenValidator } : {}),
            // A new number is a new authenticator: it receives nothing until its owner confirms it.
            ...(phone ? { phone_number: properties.phoneNumber!, phone_confirmed: false } : {}),
          });
          if (properties.tokenValidator && !phone && user.phone_confirmed && isActiveUser(user)) {
            await approvals.arm(trx, user.service_name);
          }
          if (phone) await sendPhoneConfirmation(approvals, trx, user, task.created_by ?? 'api', properties.phoneNumber!);
        },
      },
    ],
    [USER_TASKS.confirmPhoneNumber, { apply: async () => undefined }],
    // vSphere rights are written with the request (not gated, see the README); the task records the change.
    [USER_TASKS.changeRight, { apply: async () => undefined }],
    [USER_TASKS.addObjectRight, { apply: async () => undefined }],
    [USER_TASKS.removeObjectRight, { apply: async () => undefined }],
    [USER_TASKS.changePassword, credentialsChange],
    [USER_TASKS.changeCredentials, credentialsChange],
    [
      USER_TASKS.enable,
      {
        // An enable after the user's expiration date lifts it: the administrator wants him back.
        async apply(trx, task, ctx) {
          const user = await loadUser(trx, userIdOf(task));
          const expired = user.expiration_date !== null && user.expiration_date <= ctx.now;
          await repo.updateUser(trx, user.user_id, {
            activation_state: 'enabled',
            ...(expired ? { expiration_date: null } : {}),
          });
        },
        onCancel: async (trx, task) =>
          void (await repo.updateUserIf(trx, userIdOf(task), { activation_state: 'disabled' }, { activation_state: 'toEnable' })),
      },
    ],
    [
      USER_TASKS.disable,
      {
        async apply(trx, task, ctx) {
          await repo.updateUser(trx, userIdOf(task), { activation_state: 'disabled' });
          await sessions.endForUser(trx, userIdOf(task), 'userDisabled', ctx.now);
        },
        onCancel: async (trx, task) =>
          void (await repo.updateUserIf(trx, userIdOf(task), { activation_state: 'enabled' }, { activation_state: 'toDisable' })),
      },
    ],
  ];
}
