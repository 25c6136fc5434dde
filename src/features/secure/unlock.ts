import type { Actor } from '../../http/actor.js';
import { notFound } from '../../http/errors.js';
import { canonicalIp } from '../../security/addresses.js';
import { lockKeys } from '../../security/lockout.js';
import type { SecureDeps } from './context.js';

/** An operator's way out of a lockout: a user's failures, or a client network's, forgotten and audited. */
export class UnlockService {
  constructor(private readonly deps: SecureDeps) {}

  async unlockUser(serviceName: string, userName: string, actor: Actor) {
    const { users, lockout, audit } = this.deps;
    const user = await users.findByName(serviceName, userName);
    if (!user) throw notFound(`User ${userName} does not exist on ${serviceName}`);
    const key = lockKeys.user(serviceName, user.name);
    const unlocked = await lockout.clear(key);
    await audit.write({
      serviceName,
      type: 'lockout.cleared',
      actor: actor.login ?? 'operator',
      ip: actor.ip,
      userId: user.user_id,
      data: { key: key.key, unlocked },
    });
    return { serviceName, user: user.name, unlocked };
  }

  async unlockAddress(text: string, actor: Actor, serviceName: string | null = null) {
    const { lockout, audit } = this.deps;
    const ip = canonicalIp(text);
    if (!ip) throw notFound(`${text} is not an IP address`);
    const key = lockKeys.network(ip);
    const unlocked = await lockout.clear(key);
    await audit.write({
      serviceName,
      type: 'lockout.cleared',
      actor: actor.login ?? 'operator',
      ip: actor.ip,
      data: { key: key.key, address: ip, unlocked },
    });
    return { ip, key: key.key, unlocked };
  }
}
