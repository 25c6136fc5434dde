import type { Clock } from '../clock.js';

/**
 * What an instance read of something that rarely changes (a credential, a service's owner), trusted for `ttlMs` of
 * the app's clock, then read again. Every instance sees a change made elsewhere within `ttlMs`; the instance that
 * makes it calls `clear()` and sees it at once. Bounded: past `maxEntries`, the oldest entries go first. A `ttlMs` of 0
 * keeps nothing.
 *
 * `getOrLoad` reads once for every caller that misses while the read runs: when an entry expires under load, the
 * requests in flight share one read instead of each making its own at the same instant (at 50 connections, a burst
 * of 50 queries each second, queued behind the pool). A read is trusted from the moment it began, as an entry is: it
 * is joined only within `ttlMs` of its start (0: never), and what it returns is kept until `ttlMs` after its start. A
 * read stuck on a dead connection thus holds back only the callers of its first `ttlMs`, not every later one.
 */
export class TtlCache<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();
  readonly #loading = new Map<string, { promise: Promise<V>; startedAt: number }>();
  /** Bumped by `clear()`: a read begun before it neither fills the cache nor serves a caller who came after it. */
  #generation = 0;

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string): V | undefined {
    return this.#fresh(key, this.clock.now().getTime())?.value;
  }

  /** The value if fresh; otherwise `load()`'s, which fills the cache. Concurrent misses of one key share one load. */
  getOrLoad(key: string, load: () => Promise<V>): Promise<V> {
    const now = this.clock.now().getTime();
    const entry = this.#fresh(key, now);
    if (entry) return Promise.resolve(entry.value);
    const pending = this.#loading.get(key);
    if (pending && now - pending.startedAt < this.ttlMs) return pending.promise;
    const generation = this.#generation;
    const done = () => {
      if (this.#loading.get(key) === loading) this.#loading.delete(key);
    };
    const promise = load().then(
      (value) => {
        done();
        if (generation === this.#generation) this.#fill(key, value, now);
        return value;
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
    const loading = { promise, startedAt: now };
    this.#loading.set(key, loading);
    return promise;
  }

  /** The entry of `key` if still fresh at `now`; an expired one is dropped. */
  #fresh(key: string, now: number) {
    const entry = this.#entries.get(key);
    if (entry && entry.until <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Keeps `value` until `ttlMs` after `readAt`, the moment its read began. */
  #fill(key: string, value: V, readAt: number): void {
    if (this.ttlMs <= 0) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, until: readAt + this.ttlMs });
  }

  clear(): void {
    this.#entries.clear();
    this.#loading.clear();
    this.#generation++;
  }
}
