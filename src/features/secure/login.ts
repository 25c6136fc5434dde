import type { SessionScope, UserRow } from '../../db/types.js';
import { canonicalIp } from '../../security/addresses.js';
import { contexts } from '../../security/contexts.js';
import type { LoginFailure } from '../../metrics/registry.js';
import { admissionKeys, attemptKeys, judgeAdmission, lockEvents, lockKeys, type Admission } from '../../security/lockout.js';
import { verifyPassword } from '../../security/passwords.js';
import { matchTotp } from '../../security/totp.js';
import { isActiveUser } from '../users/api.js';
import { serviceNotFound } from '../../http/errors.js';
import { auditActor, refuseOutsideAllowedNetworks, tooMany, unauthorized, userNameOf, type SecureDeps } from './context.js';
import type { PasswordResetService } from './password-reset.js';
import { loginContext } from './repository.js';
import { CodeReplayed, type SessionService } from './sessions.js';

export interface LoginInput {
  login: string;
  password?: string | undefined;
  token?: string | undefined;
  resetToken?: string | undefined;
}

/** The login of the certified interface. */
export class LoginService {
  constructor(
    private readonly deps: SecureDeps,
    private readonly sessions: SessionService,
    private readonly resets: PasswordResetService,
  ) {}

  /**
   * A login, checked in order: the access policy (allowed networks when `filtered`), the lockout, the password (or a
   * password-reset code), then the TOTP code unless the client IP is in an enabled twoFAWhitelist entry (that skips
   * the code only, and is audited). A user without 2FA on a service where 2FA is on gets only the `credentialsRenewal`
   * scope.
   *
   * Every failure answers the same 401 (unknown login, wrong password, missing, wrong or replayed code, wrong reset
   * code), after the same work (argon2 runs for an unknown login too): only the audit event says which factor failed.
   */
  async login(serviceName: string, input: LoginInput, rawIp: string) {
    const { lockout, audit, metrics } = this.deps;
    const ip = canonicalIp(rawIp) ?? rawIp;
    const name = userNameOf(input.login, serviceName);
    const account = lockKeys.user(serviceName, name);
    // A reset code proves the user holds his phone or mailbox: it gets past the account's lock (a locked-out user can
    // still recover), while the pair and network keys, and the code's own 5 tries, bound the guessing.
    const keys = admissionKeys(
      input.resetToken !== undefined ? [lockKeys.pair(account, ip), lockKeys.network(ip)] : attemptKeys(account, ip),
    );
    const now = this.deps.clock.now();
    // The service, the user, where the client stands (allowed networks, 2FA whitelist) and, when the access policy
    // lets the client in, the attempt's admission by the lockout: one statement.
    const context = await loginContext(this.deps.db, serviceName, name, ip, { keys, now });
    if (context === undefined) throw serviceNotFound();
    const { service, user } = context;
    const actor = auditActor(this.deps.box, serviceName, input.login, user);
    const event = (type: string, data: Record<string, unknown>) =>
      audit.write({ serviceName, type, actor, ip, userId: user?.user_id ?? null, data });
    // The access policy comes first: from outside the allowed networks, nothing is checked, nothing is counted.
    try {
      await refuseOutsideAllowedNetworks(this.deps, service, ip, context.allowedNetwork, {
        type: 'login.refused',
        actor,
        userId: user?.user_id ?? null,
        what: 'login',
      });
    } catch (err) {
      metrics.login('refused');
      throw err;
    }
    if (context.attempt === undefined) throw new Error('the login was let in by its access policy but not admitted');
    const admission = judgeAdmission(keys, context.attempt, now);
    if (!admission.admitted) {
      await event('login.locked', { waitMs: admission.waitMs });
      metrics.login('locked');
      throw tooMany(admission.waitMs);
    }
    const failed = async (reason: LoginFailure) => {
      await event('login.failed', { reason });
      metrics.login('failed', reason);
      await this.auditLocks(event, admission);
    };
    const usable = user && isActiveUser(user, this.deps.clock.now());
    let resetUsed = false;
    let ok: boolean;
    if (input.resetToken !== undefined) {
      // The same lookup runs for an unknown login, so the answer takes the same time.
      ok = await this.resets.consume(usable ? user : undefined, input.resetToken);
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
    let step: number | undefined;
    if (resetUsed) {
      scope = 'credentialsRenewal';
    } else if (u.totp_secret_ciphertext) {
      // As read with the service, before the password's check: an entry removed during that check (tens of ms) may
      // still spare this login its code, as one removed just after the login would have.
      bypass = context.whitelisted;
      if (!bypass) {
        if (!input.token) {
          await failed('totpMissing');
          throw unauthorized();
        }
        step = await this.matchingStep(u, input.token);
        if (step === undefined) {
          await failed('totp');
          throw unauthorized();
        }
      }
    } else if (service.two_fa_state === 'enabled') {
      // "They will need to renew their password and then set up 2FA for their logins to be able to connect."
      scope = 'credentialsRenewal';
    }
    // One commit: the code's step is used (a replay, even in parallel on another instance, finds it taken and opens
    // nothing), the lockout forgets the failures (a reset login clears the account's key too: the user proved he
    // holds his phone or mailbox), and the session opens.
    let session;
    try {
      session = await this.sessions.open(
        service,
        u,
        { scope, ip, auditType: bypass ? 'login.2faBypass' : 'login.succeeded', reset: resetUsed },
        { totpStep: step, lockout: lockout.successPlan(resetUsed ? [account, ...keys] : keys, admission) },
      );
    } catch (err) {
      if (!(err instanceof CodeReplayed)) throw err;
      await failed('totp');
      throw unauthorized();
    }
    metrics.login(bypass ? '2faBypass' : 'succeeded');
    return session;
  }

  private async auditLocks(event: (type: string, data: Record<string, unknown>) => Promise<void>, admission: Admission) {
    for (const { type, data } of lockEvents(admission)) await event(type, data);
  }

  /** The step (current ±1) at which the code matches the user's secret; whether it was used is the commit's to say. */
  private async matchingStep(user: UserRow, code: string): Promise<number | undefined> {
    const { box, clock } = this.deps;
    const secret = box.open(user.totp_secret_ciphertext!, contexts.totpSecret(user.user_id));
    return matchTotp(secret, code, clock.now());
  }
}
