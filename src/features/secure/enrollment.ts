import { toOvhDate } from '../../clock.js';
import type { ServiceRow } from '../../db/types.js';
import { invalidField } from '../../http/errors.js';
import { contexts } from '../../security/contexts.js';
import { attemptKeys, lockKeys } from '../../security/lockout.js';
import { hashPassword } from '../../security/passwords.js';
import { randomAlphanumeric } from '../../security/tokens.js';
import { matchTotp, newTotpSecret, otpauthUri, qrCodeDataUri } from '../../security/totp.js';
import { USER_TASKS } from '../users/api.js';
import { auditLocks, tooMany, type SecureDeps, type SessionUser } from './context.js';
import * as repo from './repository.js';

const ENROLLMENT_TTL_MS = 10 * 60_000;

/** The guide's "Password and 2FA Shared Secret": a new secret and its QR code, then the change, held for validation. */
export class EnrollmentService {
  constructor(private readonly deps: SecureDeps) {}

  /** A new secret, its otpauth URI and QR code, valid 10 minutes. */
  async start(serviceName: string, session: SessionUser) {
    const { db, box, clock } = this.deps;
    const secret = newTotpSecret();
    const enrollmentId = randomAlphanumeric(24);
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + ENROLLMENT_TTL_MS);
    await db.transaction().execute((trx) =>
      repo.replaceEnrollment(trx, {
        enrollmentId,
        serviceName,
        userId: session.user.user_id,
        secretCiphertext: box.seal(secret, contexts.enrollmentSecret(enrollmentId)),
        now,
        expiresAt,
      }),
    );
    const uri = otpauthUri(secret, serviceName, session.user.name);
    return { enrollmentId, secret, otpauthUri: uri, qrCode: await qrCodeDataUri(uri), expiresAt: toOvhDate(expiresAt) };
  }

  /**
   * An offer the user holds, still usable: its secret again, for the page that shows it (the QR code, the text) until
   * the code is confirmed. Another user's, a used or an expired offer is `undefined`.
   */
  async offer(session: SessionUser, enrollmentId: string) {
    const { db, box, clock } = this.deps;
    const enrollment = await repo.findEnrollment(db, enrollmentId);
    if (!enrollment || enrollment.user_id !== session.user.user_id || enrollment.used_at || enrollment.expires_at <= clock.now())
      return undefined;
    const secret = box.open(enrollment.secret_ciphertext, contexts.enrollmentSecret(enrollment.enrollment_id));
    const uri = otpauthUri(secret, enrollment.service_name, session.user.name);
    return { enrollmentId, secret, otpauthUri: uri, expiresAt: enrollment.expires_at };
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
    const { lockout, services } = this.deps;
    const service = await services.find(serviceName);
    const user = session.user;
    // Each try runs argon2id up to six times (the password history, then the new hash): counted on the user before
    // any of it, given back once the change is made.
    const tries = [lockKeys.factor(lockKeys.user(serviceName, user.name), 'newPassword')];
    const tried = await lockout.admit(tries);
    if (!tried.admitted) throw tooMany(tried.waitMs);
    try {
      const result = await this.change(serviceName, session, service.two_fa_state, input, ip);
      await lockout.refund(tries, tried);
      return result;
    } catch (err) {
      await auditLocks(this.deps.audit, { serviceName, user, ip }, tried);
      throw err;
    }
  }

  private async change(
    serviceName: string,
    session: SessionUser,
    twoFaState: ServiceRow['two_fa_state'],
    input: { enrollmentId?: string | undefined; newPassword: string; code?: string | undefined },
    ip: string,
  ) {
    const { db, box, clock, lockout, users } = this.deps;
    const user = session.user;
    await users.checkNewPassword(serviceName, user.user_id, input.newPassword, 'newPassword');
    let totpSecret: string | undefined;
    let step: number | undefined;
    if (input.enrollmentId !== undefined) {
      const enrollment = await repo.findEnrollment(db, input.enrollmentId);
      if (!enrollment || enrollment.user_id !== user.user_id || enrollment.used_at || enrollment.expires_at <= clock.now()) {
        throw invalidField('enrollmentId', 'is unknown, used or expired: start the enrollment again');
      }
      totpSecret = box.open(enrollment.secret_ciphertext, contexts.enrollmentSecret(enrollment.enrollment_id));
      // The enrollment code counts like a login code, on the user, the pair and the network: decided and counted before
      // it is checked, given back when it matches.
      const keys = attemptKeys(lockKeys.factor(lockKeys.user(serviceName, user.name), 'enrollmentCode'), ip);
      const admission = await lockout.admit(keys);
      if (!admission.admitted) throw tooMany(admission.waitMs);
      step = input.code ? await matchTotp(totpSecret, input.code, clock.now()) : undefined;
      if (step === undefined) {
        await this.deps.audit.write({ serviceName, actor: user.name, ip, userId: user.user_id, type: 'enrollment.codeFailed' });
        await auditLocks(this.deps.audit, { serviceName, user, ip }, admission);
        throw invalidField('code', 'does not match the new secret: check the time on your phone and type the current code');
      }
      await lockout.refund(keys, admission);
    } else if (twoFaState === 'enabled' && !user.totp_secret_ciphertext) {
      throw invalidField(
        'enrollmentId',
        'is required: 2FA is on for this service, set up your 2FA secret with your new password',
      );
    }
    const passwordHash = await hashPassword(input.newPassword);
    const name = totpSecret ? USER_TASKS.changeCredentials : USER_TASKS.changePassword;
    return db.transaction().execute(async (trx) => {
      if (input.enrollmentId !== undefined) {
        if (!(await repo.useEnrollment(trx, input.enrollmentId, clock.now())))
          throw invalidField('enrollmentId', 'was used already');
        // The code that confirmed the new secret was accepted: it must not log in again (RFC 6238 §5.2).
        if (step !== undefined) await repo.useTotpStep(trx, user.user_id, step, clock.now());
      }
      const task = await users.createTask(trx, {
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
}
