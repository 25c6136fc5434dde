import type { Kysely, Transaction } from 'kysely';
import { toOvhDate, type Clock } from '../clock.js';
import type { Database } from '../db/types.js';
import { clientNetworkKey } from './addresses.js';
import * as repo from './lockout-repository.js';
import type { LockPolicy } from './lockout-repository.js';

export type { LockPolicy };

const HOUR = 3600_000;

/**
 * Per account (a user's login, or an API account on the consumer-key page): 5 free failures, then 30 s doubling up to
 * an hour; the 100th consecutive failure locks for a day, and so does every one after it until a success.
 */
export const ACCOUNT_POLICY: LockPolicy = {
  freeFailures: 5,
  baseDelayMs: 30_000,
  maxDelayMs: HOUR,
  hardLimit: 100,
  hardLockMs: 24 * HOUR,
  forgetAfterMs: Infinity,
};
/** Per (account, client network): the same, forgotten after a quiet day. It outlives a success elsewhere. */
const PAIR_POLICY: LockPolicy = { ...ACCOUNT_POLICY, hardLimit: Infinity, forgetAfterMs: 24 * HOUR };
/**
 * A user's tries at a new password (each runs argon2id up to six times: the password history, then the new hash):
 * 5 free, then 30 s doubling up to an hour, forgotten after a quiet day. They are not guesses, so no hard limit.
 */
const NEW_PASSWORD_POLICY: LockPolicy = PAIR_POLICY;
/** The factors a logged-in user types, each counted on a key of his own (`lockKeys.factor`), and their policies. */
const FACTOR_POLICIES = { operationToken: ACCOUNT_POLICY, enrollmentCode: ACCOUNT_POLICY, newPassword: NEW_PASSWORD_POLICY };
/**
 * Per client network (IPv4 address or IPv6 /64): more free failures, since a whole office may share one address, and
 * never cleared by a success: one login of an attacker's own account must not buy him more guesses at others.
 */
export const NETWORK_POLICY: LockPolicy = { ...PAIR_POLICY, freeFailures: 20 };

export interface LockKey {
  key: string;
  kind: 'account' | 'pair' | 'network';
  policy: LockPolicy;
}

/**
 * A typed login inside a key, lower-cased, with the keys' separators escaped (`%` first, then `:`, `@`, `#`): no login
 * can be typed that makes another key (typed as `alice@198.51.100.7`, it made the key of `alice` from that address).
 */
const keyPart = (login: string) =>
  login.toLowerCase().replace(/[%:@#]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The keys of one attempt. The login is named, not looked up: an unknown login is counted exactly like a known one. */
export const lockKeys = {
  /** A user of a service, by login name. */
  user: (serviceName: string, name: string): LockKey => ({
    key: `user:${serviceName}:${keyPart(name)}`,
    kind: 'account',
    policy: ACCOUNT_POLICY,
  }),
  /** An API account (the consumer-key validation page). */
  account: (login: string): LockKey => ({ key: `account:${keyPart(login)}`, kind: 'account', policy: ACCOUNT_POLICY }),
  pair: (account: LockKey, ip: string): LockKey => ({
    key: `${account.key}@${clientNetworkKey(ip)}`,
    kind: 'pair',
    policy: PAIR_POLICY,
  }),
  network: (ip: string): LockKey => ({ key: `ip:${clientNetworkKey(ip)}`, kind: 'network', policy: NETWORK_POLICY }),
  /**
   * What a logged-in user types, counted for him apart from his login: an SMS operation token, an enrollment code
   * (failed logins by a stranger must not stop a validator from validating, nor the other way round), and his tries at
   * a new password (counted before their costly checks: the per-address rate limit alone let one stolen session spend
   * argon2id from many addresses). An unlock of the account clears these too.
   */
  factor: (account: LockKey, factor: keyof typeof FACTOR_POLICIES): LockKey => ({
    key: `${account.key}#${factor}`,
    kind: 'account',
    policy: FACTOR_POLICIES[factor],
  }),
};

/** The keys an attempt by `account` from `ip` counts on: the account, the pair, the client's network. */
export const attemptKeys = (account: LockKey, ip: string): LockKey[] => [
  account,
  lockKeys.pair(account, ip),
  lockKeys.network(ip),
];

export interface SuccessPlan {
  clear: string[];
  refund: Array<{ key: string; own: Date | null }>;
}

export type Admission =
  | {
      admitted: true;
      /** Keys whose lock begins if this attempt fails, and whether it is the hard limit (an alert). */
      locksOnFailure: Array<{ key: string; until: Date; hardLimit: boolean }>;
    }
  | { admitted: false; waitMs: number; lockedKeys: string[] };

/**
 * Failed attempts (passwords, TOTP codes, reset and SMS tokens, enrollment codes), counted per key in PostgreSQL so
 * that every instance sees the same counts.
 *
 * Deciding and counting are one step: `admit` locks the keys' rows, refuses when one of them is locked, and otherwise
 * counts the attempt as a failure *before* the caller checks anything. A burst of parallel attempts is therefore
 * judged one by one, each against a count that includes the ones before it, and only the free failures ever reach the
 * check. `succeed` then gives the attempt back: it clears the account and pair keys and returns the network's count.
 * An attempt refused while a key is locked is counted apart (`refused`): it reaches no check and does not lengthen
 * the wait of the user it targets.
 */
export class Lockout {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
  ) {}

  async admit(keys: readonly LockKey[]): Promise<Admission> {
    const sorted = admissionKeys(keys);
    if (sorted.length === 0) return { admitted: true, locksOnFailure: [] };
    const now = this.clock.now();
    // One statement (`lockout_admit`, migrations/0012, 0014): the keys' rows counted and locked in key order, so that
    // two attempts never wait on each other crosswise; refused if one is locked, and then nothing else counted.
    return judgeAdmission(sorted, await repo.admitAttempt(this.db, sorted, now), now);
  }

  /**
   * The admitted attempt succeeded: the account and pair keys start over (earlier failures of this account are
   * disregarded); the network key only gets this attempt back, and loses the lock this attempt set, if any.
   */
  async succeed(keys: readonly LockKey[], admission: Admission): Promise<void> {
    const plan = this.successPlan(keys, admission);
    await this.db.transaction().execute(async (trx) => {
      // The keys in key order first: the account's are deleted before the network's is given back (`ip:…` sorts first).
      await repo.lockInKeyOrder(trx, [...plan.clear, ...plan.refund.map((r) => r.key)]);
      if (plan.clear.length > 0) await repo.deleteCounters(trx, plan.clear);
      await giveBack(trx, plan.refund);
    });
  }

  /**
   * What `succeed` writes, for a caller that commits it with more (a login, with its session: `open_login_session`):
   * the keys to clear, and the network keys that get the attempt back, each with the lock this attempt set, if any.
   */
  successPlan(keys: readonly LockKey[], admission: Admission): SuccessPlan {
    return {
      clear: keys.filter((k) => k.kind !== 'network').map((k) => k.key),
      refund: refundsOf(
        keys.filter((k) => k.kind === 'network'),
        admission,
      ),
    };
  }

  /**
   * The admitted attempt turned out not to be a guess (it failed for another reason, or a check that does not prove
   * identity passed): every key gets it back, and loses the lock it set, if any. Earlier failures stay.
   */
  async refund(keys: readonly LockKey[], admission: Admission): Promise<void> {
    await this.db.transaction().execute((trx) => giveBack(trx, refundsOf(keys, admission)));
  }

  /** Milliseconds before any of these keys may try again, without counting anything; 0 when none is locked. */
  async waitMs(keys: readonly LockKey[]): Promise<number> {
    if (keys.length === 0) return 0;
    const now = this.clock.now();
    const rows = await repo.runningLocks(
      this.db,
      keys.map((k) => k.key),
      now,
    );
    return rows.reduce((max, r) => Math.max(max, r.locked_until!.getTime() - now.getTime()), 0);
  }

  /** Unlock of an account: forgets its failures and those of each of its (account, network) pairs. */
  async clearAccount(account: LockKey): Promise<boolean> {
    return (await repo.deleteAccountCounters(this.db, account.key)) > 0;
  }

  /** Operator unlock: forgets a key's failures. Returns whether there was anything to forget. */
  async clear(key: LockKey): Promise<boolean> {
    return (await repo.deleteCounters(this.db, [key.key])) > 0;
  }
}

/**
 * The audit events of an admitted attempt that failed: one per lock it started, `lockout.hardLimit` (an alert) at the
 * hard limit, `lockout.started` otherwise. Every check that counts on the lockout audits them, as a login does.
 */
export function lockEvents(admission: Admission): Array<{ type: string; data: { key: string; until: string } }> {
  if (!admission.admitted) return [];
  return admission.locksOnFailure.map((lock) => ({
    type: lock.hardLimit ? 'lockout.hardLimit' : 'lockout.started',
    data: { key: lock.key, until: toOvhDate(lock.until) },
  }));
}

/** One attempt given back to each key, in key order, with the lock that attempt set on it, if any. */
function refundsOf(keys: readonly LockKey[], admission: Admission): SuccessPlan['refund'] {
  const ownLocks = new Map(admission.admitted ? admission.locksOnFailure.map((l) => [l.key, l.until]) : []);
  return sortKeys(keys).map((k) => ({ key: k.key, own: ownLocks.get(k.key) ?? null }));
}

/** Gives one attempt back to each key, and drops the lock that attempt set: one set meanwhile by another attempt stays. */
async function giveBack(trx: Transaction<Database>, refunds: SuccessPlan['refund']): Promise<void> {
  for (const { key, own } of refunds) await repo.refundFailure(trx, key, own);
}

/**
 * The keys of an attempt as `lockout_admit` takes them: once each, in key order. For a caller that runs the admission
 * within a statement of its own (a login reads its context in the same one: secure/repository.ts `loginContext`).
 */
export const admissionKeys = (keys: readonly LockKey[]): LockKey[] => sortKeys(keys);

/** The admission that `lockout_admit`'s rows for `sorted` (`admissionKeys`) say, at `now`. */
export function judgeAdmission(sorted: readonly LockKey[], rows: readonly repo.AdmittedRow[], now: Date): Admission {
  if (rows.length === 0 || rows.some((r) => !r.admitted)) {
    // Refused rows are the locked keys; none at all would be a statement that did not run: refused, never admitted.
    const waitMs = Math.max(0, ...rows.map((r) => (r.locked_until?.getTime() ?? now.getTime()) - now.getTime()));
    return { admitted: false, waitMs, lockedKeys: rows.map((r) => r.key) };
  }
  const policies = new Map(sorted.map((k) => [k.key, k.policy]));
  return {
    admitted: true,
    locksOnFailure: rows
      .filter((r) => r.locked_until !== null)
      .map((r) => ({ key: r.key, until: r.locked_until!, hardLimit: r.failures >= policies.get(r.key)!.hardLimit })),
  };
}

function sortKeys(keys: readonly LockKey[]): LockKey[] {
  const unique = new Map(keys.map((k) => [k.key, k]));
  return [...unique.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
