/**
 * Work a request starts and does not wait for, so that its answer takes the same time whatever the work finds (a
 * password-lost request answers before the user is looked up for a code). Each piece is tracked: a shutdown and a
 * test wait for all of it with `settled()`. A failure goes to the error sink (the app's logger), never to the caller.
 */
export class BackgroundWork {
  readonly #pending = new Set<Promise<void>>();
  /** Where failures go; the app points it at its logger. */
  onError: (err: unknown, what: string) => void = () => {};

  run(what: string, work: () => Promise<void>): void {
    const piece = (async () => {
      try {
        await work();
      } catch (err) {
        this.onError(err, what);
      }
    })();
    this.#pending.add(piece);
    void piece.finally(() => this.#pending.delete(piece));
  }

  /** Resolves once every piece started so far, and any they started, has finished. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }
}
