import { randomInt } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { toOvhDate, type Clock } from '../../clock.js';
import type { Database, OperationRow, TaskRow, UserRow } from '../../db/types.js';
import { ApiError, badRequest, notFound } from '../../http/errors.js';
import { enqueueMessage } from '../../notify/outbox.js';
import { contexts } from '../../security/contexts.js';
import type { SecretBox } from '../../security/secret-box.js';
import { recordAudit } from '../audit/repository.js';
import { tokenValidators } from '../users/repository.js';
import { isActiveUser } from '../users/dto.js';
import { eraseTaskChange } from '../tasks/repository.js';

export const OPERATION_TOKEN_TTL_MS = 15 * 60_000;
/** An operation only an operator can approve waits a day: nobody is paged by SMS. */
export const OPERATOR_APPROVAL_TTL_MS = 24 * 3600_000;
export const OPERATION_MAX_FAILURES = 5;
export const RESEND_INTERVAL_MS = 60_000;
/** Most SMS one operation may cause, first one included. */
export const MAX_SENDS_PER_OPERATION = 5;
/** Most SMS one phone number receives in 24 hours: an SMS costs money and an attacker could repeat the request. */
export const MAX_SMS_PER_NUMBER_PER_DAY = 30;

/**
 * How a change is approved before it applies:
 * - `none`: at once (advancedSecurity is off);
 * - `bootstrap`: at once, because the service never had a token validator who could receive a token (audited);
 * - `sms`: a token validator types the token sent by SMS;
 * - `operator`: no token validator can be reached any more on a service that had one; an operator approves with the
 *   CLI. The gate fails closed: removing, disabling or demoting the last validator never switches it off.
 */
export type Approval = 'none' | 'bootstrap' | 'sms' | 'operator';

/** `always`: the certified interface, every change waits for a token. `advancedSecurity`: the API, as the service says. */
export type ApprovalPolicy = 'always' | 'advancedSecurity';

export interface NewOperation {
  serviceName: string;
  taskId: number | null;
  kind: string;
  /** The user the change is about. */
  userId: number | null;
  /** Login of who asked (a user or an API account), for the SMS and the audit log. */
  requestedBy: string;
  /** The requesting user, when a user asked: a token validator receives the token himself. */
  requester: UserRow | null;
  /** One line for the SMS: what is being validated. */
  summary: string;
  /** Send to these numbers instead of the token validators (phone confirmation). */
  recipients?: string[];
  /** `operator`: no token is sent; only the CLI approves it. */
  approval?: 'sms' | 'operator';
}

/** Called when an operation that held a task ends without validation: the task's handler undoes what was marked. */
export type TaskCanceled = (trx: Transaction<Database>, task: TaskRow, now: Date) => Promise<void>;

const newToken = () => String(randomInt(0, 100_000_000)).padStart(8, '0');

/** Who receives the token: the requester when he is a token validator, else the service's token validators. */
export async function operationRecipients(
  trx: Transaction<Database>,
  serviceName: string,
  requester: UserRow | null,
): Promise<string[]> {
  if (requester?.is_token_validator && requester.phone_number && requester.phone_confirmed && isActiveUser(requester)) {
    return [requester.phone_number];
  }
  return (await tokenValidators(trx, serviceName)).map((v) => v.phone_number!).filter(Boolean);
}

/** Arms the service's gate: from now on, with no validator to reach, changes wait for an operator. */
export async function armApproval(trx: Transaction<Database>, serviceName: string, now: Date): Promise<void> {
  await trx
    .updateTable('service')
    .set({ approval_armed_at: now })
    .where('service_name', '=', serviceName)
    .where('approval_armed_at', 'is', null)
    .execute();
}

/** Decides how a change is approved, in the transaction that writes it. */
export async function decideApproval(
  trx: Transaction<Database>,
  input: { serviceName: string; policy: ApprovalPolicy; tokenTo: UserRow | null; now: Date },
): Promise<{ approval: Approval; recipients: string[] }> {
  const recipients = await operationRecipients(trx, input.serviceName, input.tokenTo);
  if (input.policy === 'always') {
    if (recipients.length === 0) {
      throw new ApiError(409, 'Client::Conflict', 'No token validator with a phone number can validate this operation');
    }
    return { approval: 'sms', recipients };
  }
  const service = await trx
    .selectFrom('service')
    .select(['advanced_security', 'approval_armed_at'])
    .where('service_name', '=', input.serviceName)
    .executeTakeFirstOrThrow();
  if (!service.advanced_security) return { approval: 'none', recipients: [] };
  if (recipients.length > 0) {
    await armApproval(trx, input.serviceName, input.now);
    return { approval: 'sms', recipients };
  }
  return { approval: service.approval_armed_at ? 'operator' : 'bootstrap', recipients: [] };
}

/**
 * Creates the operation and queues its SMS, in the caller's transaction: a task handler may call it with its own
 * transaction, no pool needed. An operator-approved operation sends nothing.
 */
export async function createOperation(
  trx: Transaction<Database>,
  box: SecretBox,
  now: Date,
  input: NewOperation,
): Promise<OperationRow> {
  const approval = input.approval ?? 'sms';
  const recipients =
    approval === 'operator' ? [] : (input.recipients ?? (await operationRecipients(trx, input.serviceName, input.requester)));
  if (approval === 'sms' && recipients.length === 0) {
    throw new ApiError(409, 'Client::Conflict', 'No token validator with a phone number can validate this operation');
  }
  const operation = await trx
    .insertInto('operation')
    .values({
      service_name: input.serviceName,
      task_id: input.taskId,
      kind: input.kind,
      user_id: input.userId,
      requested_by: input.requestedBy,
      token_hash: null,
      token_expires_at: new Date(now.getTime() + (approval === 'operator' ? OPERATOR_APPROVAL_TTL_MS : OPERATION_TOKEN_TTL_MS)),
      state: 'pending',
      validated_by_user_id: null,
      validated_at: null,
      last_sent_at: null,
      // the app's clock, like token_expires_at: `createdAt` and `expiresAt` are shown side by side
      created_at: now,
      approval,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  if (approval === 'sms') await issueToken(trx, box, operation, recipients, input.summary, now);
  await recordAudit(trx, {
    serviceName: input.serviceName,
    type: 'operation.created',
    actor: input.requestedBy,
    ip: null,
    userId: input.userId,
    data: {
      operationId: operation.operation_id,
      taskId: input.taskId,
      kind: input.kind,
      approval,
      recipients: recipients.length,
    },
  });
  return approval === 'sms' ? { ...operation, sends: 1, last_sent_at: now } : operation;
}

/** A fresh token replaces the previous one and goes to the same people. */
async function issueToken(
  trx: Transaction<Database>,
  box: SecretBox,
  op: OperationRow,
  recipients: string[],
  summary: string,
  now: Date,
) {
  const sentToday = await trx
    .selectFrom('outbox')
    .select(['recipient', (eb) => eb.fn.countAll<number>().as('n')])
    .where('recipient', 'in', recipients)
    .where('channel', '=', 'sms')
    .where('created_at', '>', new Date(now.getTime() - 24 * 3600_000))
    .groupBy('recipient')
    .execute();
  if (sentToday.some((r) => Number(r.n) >= MAX_SMS_PER_NUMBER_PER_DAY)) {
    throw new ApiError(429, 'Client::TooManyRequests', 'Too many SMS were sent to this number today: try again tomorrow');
  }
  const token = newToken();
  await trx
    .updateTable('operation')
    .set((eb) => ({
      token_hash: box.mac(contexts.operationToken(op.operation_id, token)),
      last_sent_at: now,
      sends: eb('sends', '+', 1),
    }))
    .where('operation_id', '=', op.operation_id)
    .execute();
  const body = `PCC ${op.service_name}: operation ${op.operation_id} (${summary}). Token: ${token}. Valid until ${toOvhDate(op.token_expires_at)}.`;
  for (const recipient of recipients) {
    await enqueueMessage(
      trx,
      box,
      { serviceName: op.service_name, channel: 'sms', recipient, body, operationId: op.operation_id },
      now,
    );
  }
}

/**
 * "This creates a task and a token will be sent to you": an operation holds a task back until it is validated, with
 * an 8-digit token stored only as a keyed hash, valid 15 minutes, ended by 5 wrong tries.
 */
export class OperationService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly taskCanceled: TaskCanceled = async () => undefined,
  ) {}

  /** Who receives the token: the requester when he is a token validator, else the service's token validators. */
  recipients(trx: Transaction<Database>, serviceName: string, requester: UserRow | null): Promise<string[]> {
    return operationRecipients(trx, serviceName, requester);
  }

  /** Creates the operation and queues its SMS, in the caller's transaction. */
  create(trx: Transaction<Database>, input: NewOperation): Promise<OperationRow> {
    return createOperation(trx, this.box, this.clock.now(), input);
  }

  async find(serviceName: string, operationId: number): Promise<OperationRow> {
    const op = await this.db
      .selectFrom('operation')
      .selectAll()
      .where('service_name', '=', serviceName)
      .where('operation_id', '=', operationId)
      .executeTakeFirst();
    if (!op) throw notFound(`Operation ${operationId} does not exist`);
    return op;
  }

  /** Resend, throttled to one SMS a minute and 5 in all per operation. */
  async resend(serviceName: string, operationId: number, requester: UserRow | null, summary: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const op = await this.lock(trx, serviceName, operationId);
      const now = this.clock.now();
      this.assertPending(op, now);
      if (op.approval === 'operator') throw badRequest(`Operation ${operationId} waits for an operator: no token is sent`);
      if (op.last_sent_at && now.getTime() - op.last_sent_at.getTime() < RESEND_INTERVAL_MS) {
        throw new ApiError(429, 'Client::TooManyRequests', 'A token was sent less than a minute ago: wait before asking again');
      }
      if (op.sends >= MAX_SENDS_PER_OPERATION) {
        throw new ApiError(
          429,
          'Client::TooManyRequests',
          `No more than ${MAX_SENDS_PER_OPERATION} tokens are sent for one operation`,
        );
      }
      const recipients = op.kind === 'confirmPhoneNumber' ? [] : await this.recipients(trx, serviceName, requester);
      if (recipients.length === 0) throw badRequest('Nobody can receive a token for this operation');
      await issueToken(trx, this.box, op, recipients, summary, now);
    });
  }

  private async lock(trx: Transaction<Database>, serviceName: string, operationId: number) {
    const op = await trx
      .selectFrom('operation')
      .selectAll()
      .where('service_name', '=', serviceName)
      .where('operation_id', '=', operationId)
      .forUpdate()
      .executeTakeFirst();
    if (!op) throw notFound(`Operation ${operationId} does not exist`);
    return op;
  }

  private assertPending(op: OperationRow, now: Date) {
    if (op.state !== 'pending') throw badRequest(`Operation ${op.operation_id} is ${op.state}`);
    if (op.token_expires_at <= now) throw badRequest(`Operation ${op.operation_id} is expired`);
  }

  /**
   * "Operation validation": checks the token, once. A wrong token counts; the fifth ends the operation and cancels its
   * task. Two validations racing: the row lock makes one win, the other finds the operation validated. On success the
   * task the operation held goes `todo`; `onValidated` adds what a task-less operation (a phone confirmation) does.
   */
  async validate(
    serviceName: string,
    operationId: number,
    token: string,
    /** The token validator's user, or null for an API account confirming a phone number. */
    validator: { user: UserRow | null; actor: string },
    ip: string,
    onValidated: (trx: Transaction<Database>, op: OperationRow) => Promise<void> = async () => undefined,
  ): Promise<OperationRow> {
    const outcome = await this.db.transaction().execute(async (trx) => {
      const op = await this.lock(trx, serviceName, operationId);
      const now = this.clock.now();
      this.assertPending(op, now);
      if (op.approval === 'operator') {
        throw new ApiError(
          403,
          'Client::Forbidden',
          `Operation ${operationId} waits for an operator: no token validator could be reached when it was asked`,
        );
      }
      const ok =
        /^\d{8}$/.test(token) &&
        op.token_hash !== null &&
        this.box.macMatches(contexts.operationToken(op.operation_id, token), op.token_hash);
      const audit = (type: string, data: Record<string, unknown> = {}) =>
        recordAudit(trx, {
          serviceName,
          type,
          actor: validator.actor,
          ip,
          userId: op.user_id,
          data: { operationId, taskId: op.task_id, ...data },
        });
      if (!ok) {
        const failures = op.failed_attempts + 1;
        const blocked = failures >= OPERATION_MAX_FAILURES;
        await trx
          .updateTable('operation')
          .set({ failed_attempts: failures, state: blocked ? 'blocked' : 'pending', token_hash: blocked ? null : op.token_hash })
          .where('operation_id', '=', operationId)
          .execute();
        if (blocked && op.task_id !== null) await this.cancelTask(trx, op.task_id, 'Canceled: too many wrong tokens', now);
        await audit('operation.validation.failed', { failures, blocked });
        return { ok: false as const, blocked, left: OPERATION_MAX_FAILURES - failures };
      }
      await this.markValidated(trx, op, validator.user?.user_id ?? null, `Validated by ${validator.actor}`, now);
      await onValidated(trx, op);
      await audit('operation.validated');
      return { ok: true as const, op: { ...op, state: 'validated' as const } };
    });
    if (!outcome.ok) {
      throw badRequest(
        outcome.blocked
          ? 'Wrong token: the operation is canceled after 5 wrong tokens'
          : `Wrong token (${outcome.left} ${outcome.left === 1 ? 'try' : 'tries'} left)`,
      );
    }
    return outcome.op;
  }

  /** Operator command: approves a pending operation without a token (the fail-closed gate's way out). */
  async approveByOperator(serviceName: string, operationId: number): Promise<OperationRow> {
    return this.db.transaction().execute(async (trx) => {
      const op = await this.lock(trx, serviceName, operationId);
      const now = this.clock.now();
      this.assertPending(op, now);
      await this.markValidated(trx, op, null, 'Validated by an operator', now);
      await recordAudit(trx, {
        serviceName,
        type: 'operation.validated',
        actor: 'operator',
        ip: null,
        userId: op.user_id,
        data: { operationId, taskId: op.task_id, approval: 'operator' },
      });
      return { ...op, state: 'validated' as const };
    });
  }

  private async markValidated(
    trx: Transaction<Database>,
    op: OperationRow,
    validatorUserId: number | null,
    description: string,
    now: Date,
  ) {
    await trx
      .updateTable('operation')
      .set({ state: 'validated', validated_by_user_id: validatorUserId, validated_at: now, token_hash: null })
      .where('operation_id', '=', op.operation_id)
      .execute();
    if (op.task_id === null) return;
    await trx
      .updateTable('task')
      .set({ state: 'todo', last_modification_date: now, description })
      .where('task_id', '=', op.task_id)
      .where('state', '=', 'waitingTodo')
      .execute();
  }

  /** Forgets used TOTP steps older than a day: only the ±1-step window needs them. Run by the worker. */
  async purgeUsedTotpSteps(): Promise<void> {
    const dayAgo = new Date(this.clock.now().getTime() - 24 * 3600_000);
    await this.db.deleteFrom('totp_used').where('used_at', '<', dayAgo).execute();
  }

  /** Ends operations whose token expired, and cancels their tasks. Run by the worker. */
  async expireDue(): Promise<number> {
    const now = this.clock.now();
    return this.db.transaction().execute(async (trx) => {
      const expired = await trx
        .updateTable('operation')
        .set({ state: 'expired', token_hash: null })
        .where('state', '=', 'pending')
        .where('token_expires_at', '<=', now)
        .returning(['operation_id', 'task_id', 'service_name', 'user_id'])
        .execute();
      for (const op of expired) {
        if (op.task_id !== null) await this.cancelTask(trx, op.task_id, 'Canceled: the operation was not validated in time', now);
        await recordAudit(trx, {
          serviceName: op.service_name,
          type: 'operation.expired',
          actor: null,
          ip: null,
          userId: op.user_id,
          data: { operationId: op.operation_id, taskId: op.task_id },
        });
      }
      return expired.length;
    });
  }

  /** Cancels a task still waiting for validation; its handler undoes what the request marked (`onCancel`). */
  private async cancelTask(trx: Transaction<Database>, taskId: number, description: string, now: Date) {
    const canceled = await trx
      .updateTable('task')
      .set({ state: 'canceled', description, end_date: now, last_modification_date: now })
      .where('task_id', '=', taskId)
      .where('state', '=', 'waitingTodo')
      .returningAll()
      .executeTakeFirst();
    await eraseTaskChange(trx, taskId);
    if (canceled) await this.taskCanceled(trx, canceled, now);
  }
}
