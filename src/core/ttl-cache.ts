import type { Clock } from '../clock.js';

/**
 * What an instance read of something that rarely changes (a credential, a service's owner), trusted for `ttlMs` of
 * the app's clock, then read again. Every instance sees a change made elsewhere within `ttlMs`; the instance that
 * makes it calls `clear()` and sees it at once. Bounded: past `maxEntries`, the oldest entries go first. A `ttlMs` of 0
 * keeps nothing.
 */
export class TtlCache<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= this.clock.now().getTime()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V): void {
    if (this.ttlMs <= 0) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, until: this.clock.now().getTime() + this.ttlMs });
  }

  clear(): void {
    this.#entries.clear();
  }
}
