import type { Clock } from '../clock.js';

/**
 * A budget of argon2id work per key (an API account), in this instance's memory: a token bucket refilled with
 * `perMinute` operations a minute, holding at most `perMinute`. One account's API calls that hash passwords (a user
 * created, a password changed: each runs argon2id up to six times, the password history then the new hash) then cannot
 * take the CPU that every other account's logins need. At most `maxKeys` accounts are remembered, the least recently
 * charged forgotten first (an account forgotten starts again with a full bucket).
 */
export class HashingBudget {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly perMinute: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Takes one operation from `key`'s budget: 0 when it was taken, otherwise the milliseconds until one is available. */
  take(key: string): number {
    const now = this.clock.now().getTime();
    const bucket = this.#buckets.get(key);
    const tokens = bucket
      ? Math.min(this.perMinute, bucket.tokens + ((now - bucket.at) * this.perMinute) / 60_000)
      : this.perMinute;
    this.#buckets.delete(key);
    if (tokens < 1) {
      this.#buckets.set(key, { tokens, at: now });
      return Math.ceil(((1 - tokens) * 60_000) / this.perMinute);
    }
    if (this.#buckets.size >= this.maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
    this.#buckets.set(key, { tokens: tokens - 1, at: now });
    return 0;
  }
}
