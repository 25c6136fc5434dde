import type { UserRow } from '../../db/types.js';
import type { Actor } from '../../http/actor.js';
import { notFound } from '../../http/errors.js';
import { canonicalIp } from '../../security/addresses.js';
import { lockKeys } from '../../security/lockout.js';
import type { SecureDeps } from './context.js';

/** An operator's way out of a lockout: a user's failures, or a client network's, forgotten and audited. */
export class UnlockService {
  constructor(private readonly deps: SecureDeps) {}

  /** The CLI's unlock, by login name. */
  async unlockUser(serviceName: string, userName: string, actor: Actor) {
    const user = await this.deps.users.findByName(serviceName, userName);
    if (!user) throw notFound(`User ${userName} does not exist on ${serviceName}`);
    return this.unlock(user, actor);
  }

  /** The API's unlock, by user id (`POST /dedicatedCloud/{serviceName}/user/{userId}/unlock`). */
  async unlockUserById(serviceName: string, userId: number, actor: Actor) {
    const user = await this.deps.users.findById(userId);
    if (!user || user.service_name !== serviceName) {
      throw notFound(`The requested object (userId = ${userId}) does not exist`);
    }
    return this.unlock(user, actor);
  }

  /** Forgets the user's failures: his account key, and his key from every client network (the pairs). */
  private async unlock(user: UserRow, actor: Actor) {
    const { lockout, audit } = this.deps;
    const serviceName = user.service_name;
    const key = lockKeys.user(serviceName, user.name);
    const unlocked = await lockout.clearAccount(key);
    await audit.write({
      serviceName,
      type: 'lockout.cleared',
      actor: actor.login ?? 'operator',
      ip: actor.ip,
      userId: user.user_id,
      data: { key: key.key, unlocked },
    });
    return { serviceName, userId: user.user_id, user: user.name, unlocked };
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
