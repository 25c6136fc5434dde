import { contexts } from '../security/contexts.js';
import { randomInt } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { toOvhDate, type Clock } from '../clock.js';
import type { Database, OperationRow, SessionScope, UserRow } from '../db/types.js';
import { ApiError, invalidField, notFound } from '../http/errors.js';
import { recordAudit } from '../modules/audit/repository.js';
import type { OperationService } from '../modules/operations/service.js';
import type { AllowedNetworkService } from '../modules/allowed-network/service.js';
import { findUserByName } from '../modules/users/repository.js';
import { isActiveUser } from '../modules/users/dto.js';
import { checkNewPassword } from '../modules/users/password-policy.js';
import { USER_TASKS, type UsersService } from '../modules/users/service.js';
import * as sessions from '../modules/users/sessions-repository.js';
import { enqueueMessage } from '../notify/outbox.js';
import { attemptKeys, lockKeys, type Lockout } from '../security/lockout.js';
import { canonicalIp } from '../security/addresses.js';
import { hashPassword, verifyPassword } from '../security/passwords.js';
import type { SecretBox } from '../security/secret-box.js';
import { randomAlphanumeric, sha256 } from '../security/tokens.js';
import { matchTotp, newTotpSecret, otpauthUri, qrCodeDataUri } from '../security/totp.js';

/** The longest a session lives, whatever the service's idle timeout. */
const SESSION_MAX_MS = 12 * 60 * 60_000;
const ENROLLMENT_TTL_MS = 10 * 60_000;
const RESET_TTL_MS = 15 * 60_000;
/** Wrong tries that void a reset code. */
const RESET_MAX_FAILURES = 5;

export interface SessionUser {
  sessionId: number;
  scope: SessionScope;
  user: UserRow;
}

export interface LoginInput {
  login: string;
  password?: string | undefined;
  token?: string | undefined;
  resetToken?: string | undefined;
}

const unauthorized = (message = 'Invalid login or password') => new ApiError(401, 'Client::Unauthorized', message);
const tooMany = (ms: number) =>
  new ApiError(429, 'Client::TooManyRequests', `Too many failed attempts: retry in ${Math.ceil(ms / 1000)} s`);

/** The guide's certified interface: sessions, "Password and 2FA Shared Secret", "Operation validation", "Password lost". */
export class SecureService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly lockout: Lockout,
    private readonly users: UsersService,
    private readonly operations: OperationService,
    private readonly allowedNetworks: AllowedNetworkService,
  ) {}

  private async service(serviceName: string) {
    const service = await this.db.selectFrom('service').selectAll().where('service_name', '=', serviceName).executeTakeFirst();
    if (!service) throw notFound('This service does not exist');
    return service;
  }

  /**
   * A login, checked in order: the access policy (allowed networks when `filtered`), the lockout, the password (or a
   * password-reset token), then the TOTP code unless the client IP is in an enabled twoFAWhitelist entry (that skips
   * the code only, and is audited). A user without 2FA on a service where 2FA is on gets only the `credentialsRenewal`
   * scope.
   */
  async login(serviceName: string, input: LoginInput, rawIp: string) {
    const ip = canonicalIp(rawIp) ?? rawIp;
    const service = await this.service(serviceName);
    const name = input.login.replace(new RegExp(`@${escapeRegExp(serviceName)}$`), '');
    const user = await findUserByName(this.db, serviceName, name);
    const audit = (type: string, data: Record<string, unknown>) =>
      this.db
        .transaction()
        .execute((trx) =>
          recordAudit(trx, { serviceName, type, actor: input.login.slice(0, 128), ip, userId: user?.user_id ?? null, data }),
        );
    // The access policy comes first: from outside the allowed networks, nothing is checked, nothing is counted.
    if (service.user_access_policy === 'filtered' && !(await this.allowedNetworks.isAllowed(serviceName, ip))) {
      await audit('login.refused', { reason: 'accessPolicy' });
      throw new ApiError(403, 'Client::Forbidden', 'Your IP address is not allowed to access this service');
    }
    const account = lockKeys.user(serviceName, name);
    // A reset code proves the user holds his phone or mailbox: it gets past the account's lock (a locked-out user can
    // still recover), while the pair and network keys, and the code's own 5 tries, bound the guessing.
    const keys = input.resetToken !== undefined ? [lockKeys.pair(account, ip), lockKeys.network(ip)] : attemptKeys(account, ip);
    const admission = await this.lockout.admit(keys);
    if (!admission.admitted) {
      await audit('login.locked', { waitMs: admission.waitMs });
      throw tooMany(admission.waitMs);
    }
    const failed = async (reason: string) => {
      await audit('login.failed', { reason });
      for (const lock of admission.locksOnFailure) {
        await audit(lock.hardLimit ? 'lockout.hardLimit' : 'lockout.started', {
          key: lock.key,
          until: toOvhDate(lock.until),
        });
      }
    };
    const usable = user && isActiveUser(user);
    let resetUsed = false;
    let ok: boolean;
    if (input.resetToken !== undefined) {
      ok = Boolean(usable) && (await this.consumeResetToken(user!, input.resetToken));
      resetUsed = ok;
    } else {
      ok = (await verifyPassword(usable ? user!.password_hash : undefined, input.password ?? '')) && Boolean(usable);
    }
    if (!ok) {
      await failed(input.resetToken !== undefined ? 'resetToken' : 'password');
      throw unauthorized();
    }
    const u = user!;
    let scope: SessionScope = 'full';
    let bypass = false;
    if (resetUsed) {
      scope = 'credentialsRenewal';
    } else if (u.totp_secret_ciphertext) {
      bypass = await this.whitelisted(serviceName, ip);
      if (!bypass) {
        if (!input.token) {
          await failed('totpMissing');
          throw unauthorized('A 2FA code is required');
        }
        if (!(await this.acceptTotp(u, input.token))) {
          await failed('totp');
          throw unauthorized('Invalid 2FA code');
        }
      }
    } else if (service.two_fa_state === 'enabled') {
      // "They will need to renew their password and then set up 2FA for their logins to be able to connect."
      scope = 'credentialsRenewal';
    }
    // A reset login clears the account's key too: the user proved he holds his phone or mailbox.
    await this.lockout.succeed(resetUsed ? [account, ...keys] : keys, admission);
    const token = randomAlphanumeric(48);
    const now = this.clock.now();
    const expiresAt = this.expiry(now, now, service.user_session_timeout);
    const session = await this.db.transaction().execute(async (trx) => {
      const live = await sessions.liveSessions(trx, u.user_id, now);
      const limit = service.user_limit_concurrent_session;
      if (limit > 0 && live.length >= limit) {
        if (service.user_logout_policy === 'last')
          throw new ApiError(403, 'Client::Forbidden', 'Too many open sessions for this user');
        for (const old of live.slice(0, live.length - limit + 1))
          await sessions.endSession(trx, old.session_id, 'sessionLimit', now);
      }
      const row = await sessions.insertSession(trx, {
        tokenHash: sha256(token),
        serviceName,
        userId: u.user_id,
        scope,
        ip,
        now,
        expiresAt,
      });
      await recordAudit(trx, {
        serviceName,
        type: bypass ? 'login.2faBypass' : 'login.succeeded',
        actor: u.name,
        ip,
        userId: u.user_id,
        data: { scope, sessionId: row.session_id, reset: resetUsed },
      });
      return row;
    });
    return { sessionToken: token, expiresAt: toOvhDate(session.expires_at), scope };
  }

  private expiry(createdAt: Date, now: Date, timeoutSeconds: number): Date {
    const absolute = createdAt.getTime() + SESSION_MAX_MS;
    return new Date(timeoutSeconds > 0 ? Math.min(now.getTime() + timeoutSeconds * 1000, absolute) : absolute);
  }

  private async whitelisted(serviceName: string, ip: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('two_fa_whitelist')
      .select('id')
      .where('service_name', '=', serviceName)
      .where('state', '=', 'enabled')
      .where(sql<boolean>`${ip}::inet <<= network`)
      .executeTakeFirst();
    return Boolean(row);
  }

  /** The code matches the user's secret (current step ±1) and its step was never used: the insert decides, atomically. */
  private async acceptTotp(user: UserRow, code: string): Promise<boolean> {
    const secret = this.box.open(user.totp_secret_ciphertext!, contexts.totpSecret(user.user_id));
    const step = await matchTotp(secret, code, this.clock.now());
    if (step === undefined) return false;
    const inserted = await this.db
      .insertInto('totp_used')
      .values({ user_id: user.user_id, step, used_at: this.clock.now() })
      .onConflict((oc) => oc.doNothing())
      .returning('step')
      .executeTakeFirst();
    return inserted !== undefined;
  }

  /** The user of a session token, if the session is live on this service; slides its idle timeout. */
  async authenticate(serviceName: string, token: string): Promise<SessionUser> {
    const row = await sessions.findSession(this.db, sha256(token));
    const now = this.clock.now();
    if (!row || row.session_service !== serviceName || row.ended_at || row.expires_at <= now || !isActiveUser(row)) {
      throw unauthorized('Session expired or unknown: log in again');
    }
    const {
      session_id,
      scope,
      session_created_at,
      expires_at: _x,
      last_seen_at,
      ended_at: _e,
      session_service: _s,
      ...user
    } = row;
    if (now.getTime() - last_seen_at.getTime() > 30_000) {
      // Slides the idle timeout, at most every 30 s: most calls write nothing.
      const service = await this.service(serviceName);
      await sessions.touchSession(this.db, session_id, now, this.expiry(session_created_at, now, service.user_session_timeout));
    }
    return { sessionId: session_id, scope, user: user as UserRow };
  }

  async logout(session: SessionUser): Promise<void> {
    await sessions.endSession(this.db, session.sessionId, 'logout', this.clock.now());
  }

  /** Step 2: a new secret, its otpauth URI and QR code, valid 10 minutes. */
  async startEnrollment(serviceName: string, session: SessionUser) {
    const secret = newTotpSecret();
    const enrollmentId = randomAlphanumeric(24);
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + ENROLLMENT_TTL_MS);
    await this.db.transaction().execute(async (trx) => {
      // One offer at a time per user.
      await trx.deleteFrom('enrollment').where('user_id', '=', session.user.user_id).where('used_at', 'is', null).execute();
      await trx
        .insertInto('enrollment')
        .values({
          enrollment_id: enrollmentId,
          service_name: serviceName,
          user_id: session.user.user_id,
          secret_ciphertext: this.box.seal(secret, contexts.enrollmentSecret(enrollmentId)),
          created_at: now,
          expires_at: expiresAt,
          used_at: null,
        })
        .execute();
    });
    const uri = otpauthUri(secret, serviceName, session.user.name);
    return { enrollmentId, secret, otpauthUri: uri, qrCode: await qrCodeDataUri(uri), expiresAt: toOvhDate(expiresAt) };
  }

  /**
   * "Enter a new password, scan the QR code, confirm the obtained code": creates the task, waiting for operation
   * validation, and sends the token. Nothing changes before validation.
   */
  async changeCredentials(
    serviceName: string,
    session: SessionUser,
    input: { enrollmentId?: string | undefined; newPassword: string; code?: string | undefined },
    ip: string,
  ) {
    const service = await this.service(serviceName);
    const user = session.user;
    await checkNewPassword(this.db, serviceName, user.user_id, input.newPassword, 'newPassword');
    let totpSecret: string | undefined;
    let step: number | undefined;
    if (input.enrollmentId !== undefined) {
      const enrollment = await this.db
        .selectFrom('enrollment')
        .selectAll()
        .where('enrollment_id', '=', input.enrollmentId)
        .executeTakeFirst();
      if (!enrollment || enrollment.user_id !== user.user_id || enrollment.used_at || enrollment.expires_at <= this.clock.now()) {
        throw invalidField('enrollmentId', 'is unknown, used or expired: start the enrollment again');
      }
      totpSecret = this.box.open(enrollment.secret_ciphertext, contexts.enrollmentSecret(enrollment.enrollment_id));
      step = input.code ? await matchTotp(totpSecret, input.code, this.clock.now()) : undefined;
      if (step === undefined) {
        // A wrong enrollment code counts like a wrong login code: on the user, the pair and the network.
        const keys = attemptKeys(lockKeys.user(serviceName, user.name), ip);
        const admission = await this.lockout.admit(keys);
        if (!admission.admitted) throw tooMany(admission.waitMs);
        throw invalidField('code', 'does not match the new secret: check the time on your phone and type the current code');
      }
    } else if (service.two_fa_state === 'enabled' && !user.totp_secret_ciphertext) {
      throw invalidField(
        'enrollmentId',
        'is required: 2FA is on for this service, set up your 2FA secret with your new password',
      );
    }
    const passwordHash = await hashPassword(input.newPassword);
    const name = totpSecret ? USER_TASKS.changeCredentials : USER_TASKS.changePassword;
    return this.db.transaction().execute(async (trx) => {
      if (input.enrollmentId !== undefined) {
        const used = await trx
          .updateTable('enrollment')
          .set({ used_at: this.clock.now() })
          .where('enrollment_id', '=', input.enrollmentId)
          .where('used_at', 'is', null)
          .executeTakeFirst();
        if (Number(used.numUpdatedRows) !== 1) throw invalidField('enrollmentId', 'was used already');
        // The code that confirmed the new secret was accepted: it must not log in again (RFC 6238 §5.2).
        if (step !== undefined)
          await trx
            .insertInto('totp_used')
            .values({ user_id: user.user_id, step, used_at: this.clock.now() })
            .onConflict((oc) => oc.doNothing())
            .execute();
      }
      const task = await this.users.createTask(trx, {
        serviceName,
        user,
        name,
        description: totpSecret ? `Change the password and 2FA secret of ${user.name}` : `Change the password of ${user.name}`,
        change: { passwordHash, ...(totpSecret ? { totpSecret } : {}), keepSessionId: session.sessionId },
        actor: { login: user.name, ip },
        requester: user,
        // After "password lost", a user who had 2FA does not receive his own token: the other validators do.
        tokenToRequester: session.scope === 'full' || !user.totp_secret_ciphertext,
        forceValidation: true,
        summary: totpSecret ? `new password and 2FA secret for ${user.name}` : `new password for ${user.name}`,
      });
      return { taskId: task.taskId, operationId: task.operationId! };
    });
  }

  /** "Load the operation received by SMS". */
  async describeOperation(serviceName: string, session: SessionUser, operationId: number) {
    this.requireValidator(session);
    const op = await this.operations.find(serviceName, operationId);
    await this.requireScopeFor(session, op);
    const subject =
      op.user_id === null
        ? undefined
        : await this.db.selectFrom('pcc_user').select('name').where('user_id', '=', op.user_id).executeTakeFirst();
    return {
      operationId: op.operation_id,
      kind: op.kind,
      state: op.state === 'pending' && op.token_expires_at <= this.clock.now() ? 'expired' : op.state,
      taskId: op.task_id,
      user: subject?.name ?? null,
      requestedBy: op.requested_by,
      createdAt: toOvhDate(op.created_at),
      expiresAt: toOvhDate(op.token_expires_at),
      triesLeft: Math.max(0, 5 - op.failed_attempts),
    };
  }

  private requireValidator(session: SessionUser) {
    if (!session.user.is_token_validator)
      throw new ApiError(403, 'Client::Forbidden', 'Only a token validator can validate operations');
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
    if (own) {
      const task = await this.db.selectFrom('task').select('created_from').where('task_id', '=', op.task_id).executeTakeFirst();
      if (task?.created_from === 'secure') return;
    }
    throw new ApiError(403, 'Client::Forbidden', 'Renew your credentials first');
  }

  async validateOperation(serviceName: string, session: SessionUser, operationId: number, token: string, ip: string) {
    this.requireValidator(session);
    await this.requireScopeFor(session, await this.operations.find(serviceName, operationId));
    const op = await this.operations.validate(
      serviceName,
      operationId,
      token,
      { user: session.user, actor: session.user.name },
      ip,
    );
    return { operationId: op.operation_id, state: 'validated' as const, taskId: op.task_id };
  }

  async resendToken(serviceName: string, session: SessionUser, operationId: number) {
    const op = await this.operations.find(serviceName, operationId);
    const own = op.user_id === session.user.user_id;
    if (!own && !session.user.is_token_validator)
      throw new ApiError(403, 'Client::Forbidden', 'Only the requester or a token validator can ask for a new token');
    const requester =
      op.user_id === null
        ? null
        : await this.db.selectFrom('pcc_user').selectAll().where('user_id', '=', op.user_id).executeTakeFirst();
    // The same people as the first token: after "password lost", a user who had 2FA is not sent his own.
    const toRequester = own && (session.scope === 'full' || !session.user.totp_secret_ciphertext);
    await this.operations.resend(serviceName, operationId, toRequester ? (requester ?? null) : null, `${op.kind}`);
  }

  /** "Password lost": a reset token by SMS (a confirmed number) or e-mail. The answer never tells whether the login exists. */
  async passwordLost(serviceName: string, login: string, rawIp: string): Promise<void> {
    const ip = canonicalIp(rawIp) ?? rawIp;
    await this.service(serviceName);
    const user = await findUserByName(this.db, serviceName, login.replace(new RegExp(`@${escapeRegExp(serviceName)}$`), ''));
    // Only the client's network lock applies: a user locked out of his account must still be able to recover it.
    const wait = await this.lockout.waitMs([lockKeys.network(ip)]);
    if (wait > 0) throw tooMany(wait);
    const channel = user?.phone_number && user.phone_confirmed ? 'sms' : user?.email ? 'email' : undefined;
    if (!user || !channel || !isActiveUser(user)) return;
    const token = String(randomInt(0, 100_000_000)).padStart(8, '0');
    const now = this.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const recent = await trx
        .selectFrom('password_reset')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('user_id', '=', user.user_id)
        .where('created_at', '>', new Date(now.getTime() - 24 * 3600_000))
        .executeTakeFirstOrThrow();
      if (Number(recent.n) >= 5) return; // a daily cap; silent, like the unknown login
      // The previous code is voided, not deleted: deleted rows would not count towards the daily cap above.
      await trx
        .updateTable('password_reset')
        .set({ expires_at: now })
        .where('user_id', '=', user.user_id)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .execute();
      await trx
        .insertInto('password_reset')
        .values({
          token_hash: this.box.mac(contexts.resetCode(user.user_id, token)),
          service_name: serviceName,
          user_id: user.user_id,
          created_at: now,
          expires_at: new Date(now.getTime() + RESET_TTL_MS),
          used_at: null,
        })
        .execute();
      const recipient = channel === 'sms' ? user.phone_number! : user.email!;
      await enqueueMessage(
        trx,
        this.box,
        {
          serviceName,
          channel,
          recipient,
          body: `PCC ${serviceName}: password reset code for ${user.name}: ${token}. Valid 15 minutes.`,
          operationId: null,
        },
        now,
      );
      await recordAudit(trx, {
        serviceName,
        type: 'user.passwordLost',
        actor: user.name,
        ip,
        userId: user.user_id,
        data: { channel },
      });
    });
  }

  /**
   * Uses the user's live reset code if `token` is it. The code is checked against every key of the secret box, so a
   * key rotation does not void codes already sent; a fifth wrong try voids it.
   */
  private async consumeResetToken(user: UserRow, token: string): Promise<boolean> {
    const now = this.clock.now();
    return this.db.transaction().execute(async (trx) => {
      const live = await trx
        .selectFrom('password_reset')
        .select(['token_hash', 'failed_attempts', 'expires_at'])
        .where('user_id', '=', user.user_id)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .orderBy('created_at', 'desc')
        .forUpdate()
        .executeTakeFirst();
      if (!live) return false;
      const ok = /^\d{8}$/.test(token) && this.box.macMatches(contexts.resetCode(user.user_id, token), live.token_hash);
      const failures = live.failed_attempts + (ok ? 0 : 1);
      await trx
        .updateTable('password_reset')
        .set({
          ...(ok ? { used_at: now } : { failed_attempts: failures }),
          ...(failures >= RESET_MAX_FAILURES ? { expires_at: now } : {}),
        })
        .where('token_hash', '=', live.token_hash)
        .execute();
      return ok;
    });
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
