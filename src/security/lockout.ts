import { sql, type Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { Database } from '../db/types.js';

export interface LockoutPolicy {
  /** Failures allowed before logins have to wait. */
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Consecutive failures after which the key stays locked until a success elsewhere clears it (NIST: ≤ 100). */
  hardLimit: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = { freeFailures: 5, baseDelayMs: 30_000, maxDelayMs: 60 * 60_000, hardLimit: 100 };

/** Never: a key at the hard limit waits for an operator or a password reset. */
const FOREVER = new Date('9999-12-31T00:00:00Z');

/**
 * Failed logins, TOTP codes and reset tokens, counted per key (`user:<id>`, `ip:<address>`) in Postgres so that every
 * instance sees the same counts. Past `freeFailures`, each failure doubles the wait (30 s, 1 min, … 1 h at most);
 * at `hardLimit` consecutive failures the key stays locked.
 */
export class Lockout {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly policy: LockoutPolicy = DEFAULT_LOCKOUT,
  ) {}

  /** Milliseconds to wait before any key of these may try again; 0 when none is locked. */
  async waitMs(keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const now = this.clock.now();
    const rows = await this.db
      .selectFrom('auth_failure')
      .select('locked_until')
      .where('key', 'in', keys)
      .where('locked_until', '>', now)
      .execute();
    return rows.reduce((max, r) => Math.max(max, r.locked_until!.getTime() - now.getTime()), 0);
  }

  async fail(keys: string[]): Promise<void> {
    const now = this.clock.now();
    for (const key of keys) {
      const row = await this.db
        .insertInto('auth_failure')
        .values({ key, failures: 1, last_failure_at: now, locked_until: null })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({ failures: sql<number>`auth_failure.failures + 1`, last_failure_at: now }),
        )
        .returning('failures')
        .executeTakeFirstOrThrow();
      const lockedUntil = this.lockUntil(row.failures, now);
      if (lockedUntil)
        await this.db.updateTable('auth_failure').set({ locked_until: lockedUntil }).where('key', '=', key).execute();
    }
  }

  private lockUntil(failures: number, now: Date): Date | null {
    if (failures >= this.policy.hardLimit) return FOREVER;
    if (failures < this.policy.freeFailures) return null;
    const delay = Math.min(this.policy.baseDelayMs * 2 ** (failures - this.policy.freeFailures), this.policy.maxDelayMs);
    return new Date(now.getTime() + delay);
  }

  /** A success clears the keys: earlier failures of this user, and from this address, are disregarded. */
  async succeed(keys: string[]): Promise<void> {
    if (keys.length > 0) await this.db.deleteFrom('auth_failure').where('key', 'in', keys).execute();
  }
}

/** Operator command: clears a key's failures, the only way out of the hard limit besides a success. */
export async function clearLockout(db: Kysely<Database>, key: string): Promise<boolean> {
  const result = await db.deleteFrom('auth_failure').where('key', '=', key).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export const userKey = (userId: number) => `user:${userId}`;
export const ipKey = (ip: string) => `ip:${ip}`;
