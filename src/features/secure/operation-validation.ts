import { toOvhDate } from '../../clock.js';
import type { OperationRow } from '../../db/types.js';
import { attemptKeys, lockKeys } from '../../security/lockout.js';
import { notFound } from '../../http/errors.js';
import { WrongOperationToken } from '../operations/api.js';
import { CONFIRM_PHONE_NUMBER, USER_TASKS } from '../users/api.js';
import { auditLocks, forbidden, tooMany, type SecureDeps, type SessionUser } from './context.js';

/** The guide's "Operation validation": a token validator loads the operation received by SMS and types its token. */
export class OperationValidationService {
  constructor(private readonly deps: SecureDeps) {}

  /** "Load the operation received by SMS". */
  async describe(serviceName: string, session: SessionUser, operationId: number) {
    const { users, clock } = this.deps;
    requireValidator(session);
    const op = await this.find(serviceName, operationId);
    await this.requireScopeFor(session, op);
    const subject = op.user_id === null ? undefined : await users.findById(op.user_id);
    // What it changes, in the words of its task ("Change the password and 2FA secret of alice").
    const task = op.task_id === null ? undefined : await this.deps.tasks.get(serviceName, op.task_id);
    return {
      operationId: op.operation_id,
      kind: op.kind,
      state: op.state === 'pending' && op.token_expires_at <= clock.now() ? 'expired' : op.state,
      taskId: op.task_id,
      description: task?.description ?? null,
      summary: op.summary,
      user: subject?.name ?? null,
      requestedBy: op.requested_by,
      createdAt: toOvhDate(op.created_at),
      expiresAt: toOvhDate(op.token_expires_at),
      triesLeft: Math.max(0, 5 - op.failed_attempts),
    };
  }

  /**
   * "Validate the operation with the token received by SMS". Besides the operation's own 5 tries, a wrong token counts
   * like a wrong login on the validator and his client network, decided and counted before the token is checked: a
   * validator's session cannot guess tokens across many operations.
   */
  async validate(serviceName: string, session: SessionUser, operationId: number, token: string, ip: string) {
    const { operations, lockout } = this.deps;
    requireValidator(session);
    await this.requireScopeFor(session, await this.find(serviceName, operationId));
    const keys = attemptKeys(lockKeys.factor(lockKeys.user(serviceName, session.user.name), 'operationToken'), ip);
    const admission = await lockout.admit(keys);
    if (!admission.admitted) throw tooMany(admission.waitMs);
    let op: OperationRow;
    try {
      op = await operations.validate(
        serviceName,
        operationId,
        token,
        { userId: session.user.user_id, actor: session.user.name },
        ip,
      );
    } catch (err) {
      // Only a wrong token is a guess; an expired or finished operation gives the attempt back.
      if (!(err instanceof WrongOperationToken)) await lockout.refund(keys, admission);
      else await auditLocks(this.deps.audit, { serviceName, user: session.user, ip }, admission);
      throw err;
    }
    await lockout.refund(keys, admission);
    return { operationId: op.operation_id, state: 'validated' as const, taskId: op.task_id };
  }

  /**
   * "Send the token again": each new token voids the ones already sent, so it is asked only by whoever may validate
   * the operation, from a full session. Neither the user a change is about nor a renewal session (a password alone, a
   * "password lost" code) may make the validators' tokens useless, nor burn the sends of an operation.
   */
  async resend(serviceName: string, session: SessionUser, operationId: number, ip: string | null = null) {
    const { operations, users } = this.deps;
    if (session.scope !== 'full') throw forbidden('Renew your credentials first');
    if (!session.user.is_token_validator) throw forbidden('Only a token validator can ask for a new token');
    const op = await this.find(serviceName, operationId);
    // The same people as the first token, never whoever asks: the user a token was addressed to (his own change from
    // this interface), else the service's token validators. After "password lost", a user who had 2FA was not sent his
    // own, and an API change about a user is not sent to that user.
    const tokenTo = op.token_to_user_id === null ? null : ((await users.findById(op.token_to_user_id)) ?? null);
    const recipients = await users.tokenRecipients(this.deps.db, serviceName, tokenTo);
    // The new SMS says what the first one said.
    await operations.resend(serviceName, operationId, recipients, op.summary ?? op.kind, {
      actor: session.user.name,
      userId: session.user.user_id,
      ip,
    });
  }

  /**
   * An operation of this interface: one that holds a task. A phone number's confirmation is typed into the API by its
   * owner (`confirmPhoneNumber`): here it does not exist, whoever asks, so that nobody else can use or burn its token.
   */
  private async find(serviceName: string, operationId: number): Promise<OperationRow> {
    const op = await this.deps.operations.find(serviceName, operationId);
    if (op.kind === CONFIRM_PHONE_NUMBER || op.task_id === null) throw notFound(`Operation ${operationId} does not exist`);
    return op;
  }

  /**
   * A full session may validate any operation of its service. A `credentialsRenewal` session only its own
   * credentials change asked from this interface, and only while setting up 2FA for the first time: "the only
   * difference will be the user's autonomy in token validation" (otherwise a token validator who must renew would
   * receive his token and never be able to use it). A renewal session of a user who already has 2FA comes from
   * "password lost": there the phone alone must not replace both factors, so another token validator validates.
   */
  private async requireScopeFor(session: SessionUser, op: OperationRow) {
    if (session.scope === 'full') return;
    const own =
      op.user_id === session.user.user_id &&
      op.task_id !== null &&
      (op.kind === USER_TASKS.changeCredentials || op.kind === USER_TASKS.changePassword) &&
      !session.user.totp_secret_ciphertext;
    if (own && (await this.deps.tasks.get(op.service_name, op.task_id!)).createdFrom === 'secure') return;
    throw forbidden('Renew your credentials first');
  }
}

function requireValidator(session: SessionUser) {
  if (!session.user.is_token_validator) throw forbidden('Only a token validator can validate operations');
}
