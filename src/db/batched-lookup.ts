/**
 * Reads by key that arrive together go to the database together: every `load` made while the event loop handles one
 * round of I/O is answered by one query, run once that round is over (`setImmediate`). Under load, many requests'
 * reads then share one round trip; alone, a read waits for nothing but the end of its own round.
 *
 * Only for reads that a snapshot may answer as well as separate ones (rows by primary key, outside any transaction).
 * A failed query fails each load of its batch with the same error.
 */
export class BatchedLookup<K, V> {
  #pending: { key: K; resolve: (value: V | undefined) => void; reject: (err: unknown) => void }[] = [];
  #scheduled = false;

  constructor(
    private readonly fetch: (keys: K[]) => Promise<Map<K, V>>,
    private readonly maxBatch = 100,
  ) {}

  load(key: K): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ key, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    const pending = this.#pending;
    this.#pending = [];
    this.#scheduled = false;
    for (let i = 0; i < pending.length; i += this.maxBatch) {
      const batch = pending.slice(i, i + this.maxBatch);
      const keys = [...new Set(batch.map((p) => p.key))];
      this.fetch(keys).then(
        (found) => {
          for (const p of batch) p.resolve(found.get(p.key));
        },
        (err: unknown) => {
          for (const p of batch) p.reject(err);
        },
      );
    }
  }
}
