import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Database } from '../../db/types.js';
import type { AuditExpiry } from '../audit/api.js';
import * as repo from './repository.js';

const DAY = 24 * 3600_000;

/**
 * How long what unauthenticated or routine traffic leaves behind is kept. The README lists the same figures. Audit
 * events are kept for `AUDIT_RETENTION_DAYS` when it is set (by default, until the operator's `audit purge`).
 */
export const RETENTION = {
  /** A failure counter nobody failed on for this long starts over (it locks nobody by then). */
  authFailureIdleMs: 30 * DAY,
  /** A counter brought back to zero by a success. */
  authFailureZeroMs: DAY,
  /** A consumer key never validated, counted from the end of its validation window. */
  pendingCredentialMs: 7 * DAY,
  /** A message sent or given up: the daily SMS cap reads the last 24 hours. */
  outboxMs: 30 * DAY,
  /** An enrollment offer, from its expiry. */
  enrollmentMs: DAY,
  /** A "password lost" code: the daily cap of 5 reads the last 24 hours. */
  passwordResetMs: 2 * DAY,
  /** A session, from its end. */
  sessionMs: 30 * DAY,
  /** A used TOTP step: only the ±1-step window (90 s) needs it against a replay. */
  totpStepMs: DAY,
  /** How often an instance's worker runs the purge. */
  intervalMs: 10 * 60_000,
} as const;

export type RetentionReport = Record<
  | 'authFailures'
  | 'pendingCredentials'
  | 'oauthTokens'
  | 'outbox'
  | 'enrollments'
  | 'passwordResets'
  | 'expiredSessions'
  | 'sessions'
  | 'totpSteps'
  | 'auditEvents',
  number
>;

/**
 * Deletes what has outlived its use, table by table, and ends the sessions that expired. Run by the worker's
 * housekeeping, every few minutes at most.
 */
export class RetentionService {
  #lastRun = -Infinity;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    /** The audit log's retention, in days (`AUDIT_RETENTION_DAYS`; 0: none). */
    private readonly audit: { expiry: AuditExpiry; days: number },
  ) {}

  /** Purges unless the last purge of this instance is more recent than `RETENTION.intervalMs`. */
  async purgeIfDue(): Promise<RetentionReport | undefined> {
    const now = this.clock.now().getTime();
    if (now - this.#lastRun < RETENTION.intervalMs) return undefined;
    this.#lastRun = now;
    return this.purge();
  }

  async purge(): Promise<RetentionReport> {
    const now = this.clock.now();
    const ago = (ms: number) => new Date(now.getTime() - ms);
    return {
      authFailures: await repo.purgeAuthFailures(
        this.db,
        now,
        ago(RETENTION.authFailureIdleMs),
        ago(RETENTION.authFailureZeroMs),
      ),
      pendingCredentials: await repo.purgePendingCredentials(this.db, ago(RETENTION.pendingCredentialMs)),
      oauthTokens: await repo.purgeExpiredOauthTokens(this.db, now),
      outbox: await repo.purgeOutbox(this.db, ago(RETENTION.outboxMs)),
      enrollments: await repo.purgeEnrollments(this.db, ago(RETENTION.enrollmentMs)),
      passwordResets: await repo.purgePasswordResets(this.db, ago(RETENTION.passwordResetMs)),
      expiredSessions: await repo.endExpiredSessions(this.db, now),
      sessions: await repo.purgeSessions(this.db, ago(RETENTION.sessionMs)),
      totpSteps: await repo.purgeTotpSteps(this.db, ago(RETENTION.totpStepMs)),
      auditEvents: this.audit.days > 0 ? await this.audit.expiry.expire(ago(this.audit.days * DAY)) : 0,
    };
  }
}
