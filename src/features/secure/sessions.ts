import type { Transaction } from 'kysely';
import { toOvhDate } from '../../clock.js';
import type { Database, ServiceRow, SessionScope, UserRow } from '../../db/types.js';
import { randomAlphanumeric, sha256 } from '../../security/tokens.js';
import { isActiveUser } from '../users/api.js';
import type { Sessions } from './api.js';
import { forbidden, unauthorized, type SecureDeps, type SessionUser } from './context.js';
import * as repo from './sessions-repository.js';

/** The longest a session lives, whatever the service's idle timeout. */
const SESSION_MAX_MS = 12 * 60 * 60_000;

/** Certified-interface sessions: opened by a login, carried as a bearer token, ended by logout or a limit. */
export class SessionService implements Sessions {
  constructor(private readonly deps: SecureDeps) {}

  /** Opens a session for a user who just logged in, within the service's limits, and audits the login. */
  async open(service: ServiceRow, user: UserRow, input: { scope: SessionScope; ip: string; auditType: string; reset: boolean }) {
    const { db, clock, audit } = this.deps;
    const token = randomAlphanumeric(48);
    const now = clock.now();
    const expiresAt = expiry(now, now, service.user_session_timeout);
    const session = await db.transaction().execute(async (trx) => {
      const live = await repo.liveSessions(trx, user.user_id, now);
      const limit = service.user_limit_concurrent_session;
      if (limit > 0 && live.length >= limit) {
        if (service.user_logout_policy === 'last') throw forbidden('Too many open sessions for this user');
        for (const old of live.slice(0, live.length - limit + 1)) await repo.endSession(trx, old.session_id, 'sessionLimit', now);
      }
      const row = await repo.insertSession(trx, {
        tokenHash: sha256(token),
        serviceName: service.service_name,
        userId: user.user_id,
        scope: input.scope,
        ip: input.ip,
        now,
        expiresAt,
      });
      await audit.record(trx, {
        serviceName: service.service_name,
        type: input.auditType,
        actor: user.name,
        ip: input.ip,
        userId: user.user_id,
        data: { scope: input.scope, sessionId: row.session_id, reset: input.reset },
      });
      return row;
    });
    return { sessionToken: token, expiresAt: toOvhDate(session.expires_at), scope: input.scope };
  }

  /** The user of a session token, if the session is live on this service; slides its idle timeout. */
  async authenticate(serviceName: string, token: string): Promise<SessionUser> {
    const { db, clock, services } = this.deps;
    const row = await repo.findSession(db, sha256(token));
    const now = clock.now();
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
      const service = await services.find(serviceName);
      await repo.touchSession(db, session_id, now, expiry(session_created_at, now, service.user_session_timeout));
    }
    return { sessionId: session_id, scope, user: user as UserRow };
  }

  async logout(session: SessionUser): Promise<void> {
    await repo.endSession(this.deps.db, session.sessionId, 'logout', this.deps.clock.now());
  }

  endForUser(trx: Transaction<Database>, userId: number, reason: string, now: Date, keep?: number): Promise<number> {
    return repo.endUserSessions(trx, userId, reason, now, keep);
  }
}

function expiry(createdAt: Date, now: Date, timeoutSeconds: number): Date {
  const absolute = createdAt.getTime() + SESSION_MAX_MS;
  return new Date(timeoutSeconds > 0 ? Math.min(now.getTime() + timeoutSeconds * 1000, absolute) : absolute);
}
