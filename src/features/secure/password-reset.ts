import { randomInt } from 'node:crypto';
import type { UserRow } from '../../db/types.js';
import { enqueueMessage } from '../../notify/outbox.js';
import { canonicalIp } from '../../security/addresses.js';
import { contexts } from '../../security/contexts.js';
import { lockKeys } from '../../security/lockout.js';
import { isActiveUser } from '../users/api.js';
import { requireAllowedNetwork, tooMany, userNameOf, type SecureDeps } from './context.js';
import * as repo from './repository.js';

const RESET_TTL_MS = 15 * 60_000;
/** Wrong tries that void a reset code. */
const RESET_MAX_FAILURES = 5;
/** Codes one user may be sent in 24 hours. */
const RESETS_PER_DAY = 5;

/** "Password lost": a reset code by SMS or e-mail, which opens a credentials-renewal session. */
export class PasswordResetService {
  constructor(private readonly deps: SecureDeps) {}

  /** Sends a reset code to a confirmed phone number, or an e-mail address. The answer never tells whether the login exists. */
  async passwordLost(serviceName: string, login: string, rawIp: string): Promise<void> {
    const { db, box, clock, lockout, audit, users, services } = this.deps;
    const ip = canonicalIp(rawIp) ?? rawIp;
    const service = await services.find(serviceName);
    const user = await users.findByName(serviceName, userNameOf(login, serviceName));
    await requireAllowedNetwork(this.deps, service, ip, {
      type: 'access.refused',
      actor: login.slice(0, 128),
      userId: user?.user_id ?? null,
      what: 'passwordLost',
    });
    // Only the client's network lock applies: a user locked out of his account must still be able to recover it.
    const wait = await lockout.waitMs([lockKeys.network(ip)]);
    if (wait > 0) throw tooMany(wait);
    const channel = user?.phone_number && user.phone_confirmed ? 'sms' : user?.email ? 'email' : undefined;
    const now = clock.now();
    if (!user || !channel || !isActiveUser(user, now)) return;
    const code = String(randomInt(0, 100_000_000)).padStart(8, '0');
    await db.transaction().execute(async (trx) => {
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
   * key rotation does not void codes already sent; a fifth wrong try voids it.
   */
  async consume(user: UserRow, code: string): Promise<boolean> {
    const { db, box, clock } = this.deps;
    const now = clock.now();
    return db.transaction().execute(async (trx) => {
      const live = await repo.lockLiveReset(trx, user.user_id, now);
      if (!live) return false;
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
