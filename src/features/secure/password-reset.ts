import { randomInt } from 'node:crypto';
import type { UserRow } from '../../db/types.js';
import { enqueueMessage } from '../../notify/outbox.js';
import { canonicalIp } from '../../security/addresses.js';
import { contexts } from '../../security/contexts.js';
import { lockKeys } from '../../security/lockout.js';
import { isActiveUser } from '../users/api.js';
import { auditActor, requireAllowedNetwork, tooMany, userNameOf, type SecureDeps } from './context.js';
import * as repo from './repository.js';

const RESET_TTL_MS = 15 * 60_000;
/** Wrong tries that void a reset code. */
const RESET_MAX_FAILURES = 5;
/** Codes one user may be sent in 24 hours. */
const RESETS_PER_DAY = 5;

/** A user id no row has (ids start at 1): the lookup an unknown login makes. */
const NO_USER = 0;

/** "Password lost": a reset code by SMS or e-mail, which opens a credentials-renewal session. */
export class PasswordResetService {
  constructor(private readonly deps: SecureDeps) {}

  /**
   * Sends a reset code to a confirmed phone number, or an e-mail address. The answer never tells whether the login
   * exists, nor how it can be reached: past the access policy and the network lock, the request answers at once and
   * the code is made and queued in the background (`BackgroundWork`, awaited on shutdown). A request lost in a crash
   * costs the user one more request, never a code sent twice.
   */
  async passwordLost(serviceName: string, login: string, rawIp: string): Promise<void> {
    const { lockout, users, services, background } = this.deps;
    const ip = canonicalIp(rawIp) ?? rawIp;
    const service = await services.find(serviceName);
    const user = await users.findByName(serviceName, userNameOf(login, serviceName));
    await requireAllowedNetwork(this.deps, service, ip, {
      type: 'access.refused',
      actor: auditActor(this.deps.box, serviceName, login, user),
      userId: user?.user_id ?? null,
      what: 'passwordLost',
    });
    // Only the client's network lock applies: a user locked out of his account must still be able to recover it.
    const wait = await lockout.waitMs([lockKeys.network(ip)]);
    if (wait > 0) throw tooMany(wait);
    if (user) background.run('passwordLost', () => this.sendCode(serviceName, user, ip));
  }

  private async sendCode(serviceName: string, user: UserRow, ip: string): Promise<void> {
    const { db, box, clock, audit } = this.deps;
    const channel = user.phone_number && user.phone_confirmed ? 'sms' : user.email ? 'email' : undefined;
    const now = clock.now();
    if (!channel || !isActiveUser(user, now)) return;
    const code = String(randomInt(0, 100_000_000)).padStart(8, '0');
    await db.transaction().execute(async (trx) => {
      // One user's requests one at a time: counted, voided and made on what the one before left (at once, 50 requests
      // made 30 codes, 20 of them live together).
      await repo.lockUserForResets(trx, user.user_id);
      // A daily cap; silent, like an unknown login.
      if ((await repo.countResetsSince(trx, user.user_id, new Date(now.getTime() - 24 * 3600_000))) >= RESETS_PER_DAY) return;
      await repo.voidResets(trx, user.user_id, now);
      await repo.insertReset(trx, {
        tokenHash: box.mac(contexts.resetCode(user.user_id, code)),
        serviceName,
        userId: user.user_id,
        now,
        expiresAt: new Date(now.getTime() + RESET_TTL_MS),
      });
      const recipient = channel === 'sms' ? user.phone_number! : user.email!;
      const body = `PCC ${serviceName}: password reset code for ${user.name}: ${code}. Valid 15 minutes.`;
      await enqueueMessage(trx, box, { serviceName, channel, recipient, body, operationId: null }, now);
      await audit.record(trx, {
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
   * Uses the user's live reset code if `code` is it. The code is checked against every key of the secret box, so a
   * key rotation does not void codes already sent; a fifth wrong try voids it. Without a user (an unknown or disabled
   * login), the same transaction and lookup run and find nothing: the answer takes the same time.
   */
  async consume(user: UserRow | undefined, code: string): Promise<boolean> {
    const { db, box, clock } = this.deps;
    const now = clock.now();
    return db.transaction().execute(async (trx) => {
      const live = await repo.lockLiveReset(trx, user?.user_id ?? NO_USER, now, RESET_MAX_FAILURES);
      if (!user || !live) return false;
      const ok = /^\d{8}$/.test(code) && box.macMatches(contexts.resetCode(user.user_id, code), live.token_hash);
      const failures = live.failed_attempts + (ok ? 0 : 1);
      await repo.updateReset(trx, live.token_hash, {
        ...(ok ? { used_at: now } : { failed_attempts: failures }),
        ...(failures >= RESET_MAX_FAILURES ? { expires_at: now } : {}),
      });
      return ok;
    });
  }
}
