import type { Transaction } from 'kysely';
import { toOvhDate } from '../../clock.js';
import type { Database, ServiceRow, SessionScope, UserRow } from '../../db/types.js';
import { randomAlphanumeric, sha256 } from '../../security/tokens.js';
import { isActiveUser } from '../users/api.js';
import type { Sessions } from './api.js';
import { requireAllowedNetwork, unauthorized, type SecureDeps, type SessionUser } from './context.js';
import * as repo from './sessions-repository.js';
import type { SuccessPlan } from '../../security/lockout.js';

/** How long a session lives on a service whose `userSessionTimeout` is 0 (no idle timeout): 12 hours, documented. */
const NO_TIMEOUT_LIFETIME_MS = 12 * 60 * 60_000;

/** The TOTP code's step was used already (a replay): no session was opened. */
export class CodeReplayed extends Error {}

/** Certified-interface sessions: opened by a login, carried as a bearer token, ended by logout or a limit. */
export class SessionService implements Sessions {
  constructor(private readonly deps: SecureDeps) {}

  /**
   * Opens a session for a user who just logged in, within the service's limits, and audits the login, in one
   * statement (`open_login_session`, migrations/0011), with what the login commits with it: the TOTP step its code used
   * (none when no code was checked; taken already: `CodeReplayed`, and nothing opens) and its lockout success.
   *
   * OVH's `userLimitConcurrentSession` is the number of users connected to the service. A user already connected
   * takes no more room; a new one, at the quota, disconnects a user as `userLogoutPolicy` says (`first`: the earliest
   * connected, `last`: the most recently connected) and is admitted. Each ended session is audited. The service's row
   * is locked meanwhile, so logins to one service decide the quota one at a time, on a count no other is changing.
   * A user holds at most `userSessionsMax` live sessions: beyond it, his login ends his oldest (each audited).
   */
  async open(
    service: ServiceRow,
    user: UserRow,
    input: { scope: SessionScope; ip: string; auditType: string; reset: boolean },
    login: { totpStep: number | undefined; lockout: SuccessPlan },
  ) {
    const { db, clock } = this.deps;
    const token = randomAlphanumeric(48);
    const now = clock.now();
    const expiresAt = expiry(now, now, service.user_session_timeout);
    const opened = await repo.openLoginSession(db, {
      serviceName: service.service_name,
      userId: user.user_id,
      actor: user.name,
      ip: input.ip,
      scope: input.scope,
      tokenHash: sha256(token),
      now,
      expiresAt,
      auditType: input.auditType,
      reset: input.reset,
      totpStep: login.totpStep ?? null,
      lockout: login.lockout,
      userMax: this.deps.userSessionsMax,
    });
    if (opened.replayed) throw new CodeReplayed();
    return { sessionToken: token, expiresAt: toOvhDate(expiresAt), scope: input.scope };
  }

  /** The user of a session token, if the session is live on this service; slides its idle timeout. */
  async authenticate(serviceName: string, token: string, ip: string): Promise<SessionUser> {
    const { db, clock } = this.deps;
    const row = await repo.findSession(db, sha256(token));
    const now = clock.now();
    if (!row || row.session_service !== serviceName || row.ended_at || row.expires_at <= now || !isActiveUser(row, now)) {
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
    const { user_access_policy, user_session_timeout, ...userRow } = user;
    // The service's idle timeout as it is now: lowering it applies to the sessions already open.
    const idleMs = user_session_timeout * 1000;
    if (idleMs > 0 && now.getTime() - last_seen_at.getTime() > idleMs) {
      throw unauthorized('Session expired or unknown: log in again');
    }
    // A session opened from an allowed network does not carry its holder past the policy from anywhere else.
    await requireAllowedNetwork(this.deps, { service_name: serviceName, user_access_policy }, ip, {
      type: 'access.refused',
      actor: userRow.name,
      userId: userRow.user_id,
      what: 'session',
    });
    // Slides the idle timeout at most every 30 s (a quarter of the timeout when it is shorter): most calls write nothing.
    if (now.getTime() - last_seen_at.getTime() > (idleMs > 0 ? Math.min(30_000, idleMs / 4) : 30_000)) {
      await repo.touchSession(db, session_id, now, expiry(session_created_at, now, user_session_timeout));
    }
    return { sessionId: session_id, scope, user: userRow as UserRow };
  }

  /** The user's live sessions (an idle one past the service's timeout excluded), the one asking marked `current`. */
  async list(session: SessionUser) {
    const timeoutSeconds = (await this.deps.services.find(session.user.service_name)).user_session_timeout;
    const now = this.deps.clock.now();
    const rows = await repo.listLiveSessions(this.deps.db, session.user.user_id, now);
    return rows
      .filter((r) => timeoutSeconds <= 0 || now.getTime() - new Date(r.last_seen_at).getTime() <= timeoutSeconds * 1000)
      .map((r) => ({
        sessionId: r.session_id,
        current: r.session_id === session.sessionId,
        scope: r.scope,
        ip: r.ip,
        createdAt: new Date(r.created_at),
        lastSeenAt: new Date(r.last_seen_at),
        expiresAt: new Date(r.expires_at),
      }));
  }

  async logout(session: SessionUser, ip: string | null = null): Promise<void> {
    const { db, clock, audit } = this.deps;
    await db.transaction().execute(async (trx) => {
      await repo.endSession(trx, session.sessionId, 'logout', clock.now());
      await audit.record(trx, {
        serviceName: session.user.service_name,
        type: 'session.ended',
        actor: session.user.name,
        ip,
        userId: session.user.user_id,
        data: { reason: 'logout', sessionId: session.sessionId },
      });
    });
  }

  endForUser(trx: Transaction<Database>, userId: number, reason: string, now: Date, keep?: number): Promise<number> {
    return repo.endUserSessions(trx, userId, reason, now, keep);
  }
}

/** An idle timeout slides with each call, with no other cap; without one, a session lives 12 hours from its login. */
function expiry(createdAt: Date, now: Date, timeoutSeconds: number): Date {
  return new Date(timeoutSeconds > 0 ? now.getTime() + timeoutSeconds * 1000 : createdAt.getTime() + NO_TIMEOUT_LIFETIME_MS);
}
