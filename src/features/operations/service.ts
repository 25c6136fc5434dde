import { randomInt } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { toOvhDate, type Clock } from '../../clock.js';
import type { Database, OperationRow } from '../../db/types.js';
import { ApiError, badRequest, notFound } from '../../http/errors.js';
import { enqueueMessage, smsSentToday } from '../../notify/outbox.js';
import { contexts } from '../../security/contexts.js';
import type { SecretBox } from '../../security/secret-box.js';
import type { AuditLog } from '../audit/api.js';
import {
  WrongOperationToken,
  type Approval,
  type ApprovalPolicy,
  type HeldTasks,
  type NewOperation,
  type OperationValidator,
  type Operations,
} from './api.js';
import * as repo from './repository.js';

const OPERATION_TOKEN_TTL_MS = 15 * 60_000;
/** An operation only an operator can approve waits a day: nobody is paged by SMS. */
const OPERATOR_APPROVAL_TTL_MS = 24 * 3600_000;
const OPERATION_MAX_FAILURES = 5;
const RESEND_INTERVAL_MS = 60_000;
/** Most SMS one operation may cause, first one included. */
const MAX_SENDS_PER_OPERATION = 5;
/** Most SMS one phone number receives in 24 hours: an SMS costs money and an attacker could repeat the request. */
const MAX_SMS_PER_NUMBER_PER_DAY = 30;

const newToken = () => String(randomInt(0, 100_000_000)).padStart(8, '0');
const noValidator = () =>
  new ApiError(409, 'Client::Conflict', 'No token validator with a phone number can validate this operation');

/**
 * Approval by SMS token: "this creates a task and a token will be sent to you". An operation holds something back (a
 * task, or a phone number's confirmation) until someone types the 8-digit token it sent, stored only as a keyed hash,
 * valid 15 minutes, ended by 5 wrong tries. It knows nothing of users or tasks: who receives tokens and what a held
 * task does are handed in.
 */
export class OperationService implements Operations {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly tasks: HeldTasks,
    /** The page where a token validator opens an operation (the certified interface), linked from its SMS. */
    private readonly pageOf?: (serviceName: string, operationId: number) => string,
  ) {}

  async decide(
    trx: Transaction<Database>,
    input: { serviceName: string; policy: ApprovalPolicy; recipients: string[] },
  ): Promise<Approval> {
    if (input.policy === 'always') {
      if (input.recipients.length === 0) throw noValidator();
      return 'sms';
    }
    const gate = await repo.gateOf(trx, input.serviceName);
    if (!gate.advanced_security) return 'none';
    if (input.recipients.length > 0) {
      await this.arm(trx, input.serviceName);
      return 'sms';
    }
    return gate.approval_armed_at ? 'operator' : 'bootstrap';
  }

  arm(trx: Transaction<Database>, serviceName: string): Promise<void> {
    return repo.armGate(trx, serviceName, this.clock.now());
  }

  /** Creates the operation and queues its SMS, in the caller's transaction. An operator's approval sends nothing. */
  async open(trx: Transaction<Database>, input: NewOperation): Promise<OperationRow> {
    const now = this.clock.now();
    const approval = input.approval ?? 'sms';
    if (approval === 'sms' && input.recipients.length === 0) throw noValidator();
    const ttl = approval === 'operator' ? OPERATOR_APPROVAL_TTL_MS : OPERATION_TOKEN_TTL_MS;
    const op = await repo.insertOperation(trx, { ...input, approval, expiresAt: new Date(now.getTime() + ttl), now });
    if (approval === 'sms') await this.issueToken(trx, op, input.recipients, input.summary, now);
    await this.audit.record(trx, {
      serviceName: input.serviceName,
      type: 'operation.created',
      actor: input.requestedBy,
      ip: null,
      userId: input.userId,
      data: {
        operationId: op.operation_id,
        taskId: input.taskId,
        kind: input.kind,
        approval,
        recipients: approval === 'sms' ? input.recipients.length : 0,
      },
    });
    return approval === 'sms' ? { ...op, sends: 1, last_sent_at: now } : op;
  }

  /** A fresh token replaces the previous one and goes to the same people. */
  private async issueToken(trx: Transaction<Database>, op: OperationRow, recipients: string[], summary: string, now: Date) {
    const sent = await smsSentToday(trx, recipients, now);
    if (recipients.some((r) => (sent.get(r) ?? 0) >= MAX_SMS_PER_NUMBER_PER_DAY)) {
      throw new ApiError(429, 'Client::TooManyRequests', 'Too many SMS were sent to this number today: try again tomorrow');
    }
    const token = newToken();
    await repo.setToken(trx, op.operation_id, this.box.mac(contexts.operationToken(op.operation_id, token)), now);
    // A phone number's confirmation is typed into the API, not the certified interface: its SMS links to no page.
    const page = this.pageOf && op.task_id !== null ? ` Validate at ${this.pageOf(op.service_name, op.operation_id)}` : '';
    const body = `PCC ${op.service_name}: operation ${op.operation_id} (${summary}). Token: ${token}. Valid until ${toOvhDate(op.token_expires_at)}.${page}`;
    for (const recipient of recipients) {
      await enqueueMessage(
        trx,
        this.box,
        { serviceName: op.service_name, channel: 'sms', recipient, body, operationId: op.operation_id },
        now,
      );
    }
  }

  async find(serviceName: string, operationId: number): Promise<OperationRow> {
    const op = await repo.findOperation(this.db, serviceName, operationId);
    if (!op) throw notFound(`Operation ${operationId} does not exist`);
    return op;
  }

  latestPending(serviceName: string, userId: number, kind: string): Promise<OperationRow | undefined> {
    return repo.latestPending(this.db, serviceName, userId, kind);
  }

  /** Resend, throttled to one SMS a minute and 5 in all per operation. */
  async resend(
    serviceName: string,
    operationId: number,
    recipients: string[],
    summary: string,
    asker: { actor: string; userId: number | null; ip: string | null } = { actor: 'operator', userId: null, ip: null },
  ): Promise<void> {
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
      if (recipients.length === 0) throw badRequest('Nobody can receive a token for this operation');
      await this.issueToken(trx, op, recipients, summary, now);
      await this.audit.record(trx, {
        serviceName,
        type: 'operation.resent',
        actor: asker.actor,
        ip: asker.ip,
        userId: op.user_id,
        data: { operationId, taskId: op.task_id, recipients: recipients.length, sends: op.sends + 1, askedBy: asker.userId },
      });
    });
  }

  private async lock(trx: Transaction<Database>, serviceName: string, operationId: number) {
    const op = await repo.findOperation(trx, serviceName, operationId, true);
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
   * task the operation held may run; `onValidated` adds what a task-less operation (a phone confirmation) does.
   */
  async validate(
    serviceName: string,
    operationId: number,
    token: string,
    validator: OperationValidator,
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
        this.audit.record(trx, {
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
        await repo.recordFailure(trx, operationId, failures, blocked);
        if (blocked && op.task_id !== null) await this.tasks.cancel(trx, op.task_id, 'Canceled: too many wrong tokens', now);
        await audit('operation.validation.failed', { failures, blocked });
        return { ok: false as const, blocked, left: OPERATION_MAX_FAILURES - failures };
      }
      await this.markValidated(trx, op, validator.userId, `Validated by ${validator.actor}`, now);
      await onValidated(trx, op);
      await audit('operation.validated');
      return { ok: true as const, op: { ...op, state: 'validated' as const } };
    });
    if (!outcome.ok) {
      throw new WrongOperationToken(
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
      await this.audit.record(trx, {
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
    byUserId: number | null,
    description: string,
    now: Date,
  ) {
    await repo.markValidated(trx, op.operation_id, byUserId, now);
    if (op.task_id !== null) await this.tasks.release(trx, op.task_id, description, now);
  }

  /** Ends operations whose time ran out, and cancels their tasks. Run by the worker. */
  async expireDue(): Promise<number> {
    const now = this.clock.now();
    return this.db.transaction().execute(async (trx) => {
      const expired = await repo.expireDue(trx, now);
      for (const op of expired) {
        if (op.task_id !== null)
          await this.tasks.cancel(trx, op.task_id, 'Canceled: the operation was not validated in time', now);
        await this.audit.record(trx, {
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
}
