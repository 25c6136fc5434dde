import type { Transaction } from 'kysely';
import type { Database, TaskRow } from '../db/types.js';
import type { SecretBox } from '../security/secret-box.js';

export interface TaskContext {
  now: Date;
  /** Opens sealed pending changes and seals outgoing messages. */
  box: SecretBox;
}

/**
 * What the worker does for one task name. `apply` runs inside the transaction that marks the task `done`, so its
 * change and the task's end commit together or not at all: a task is applied at most once, whatever crashes.
 */
export interface TaskHandler {
  apply(trx: Transaction<Database>, task: TaskRow, ctx: TaskContext): Promise<void>;
  /** Runs, in its own transaction, when `apply` failed: marks the object the task was about. */
  onError?(trx: Transaction<Database>, task: TaskRow, ctx: TaskContext): Promise<void>;
  /**
   * Runs in the transaction that cancels a task still waiting for validation (its token expired or was mistyped 5
   * times): undoes what the request marked on the object (a user `creating`, an entry `enabling`).
   */
  onCancel?(trx: Transaction<Database>, task: TaskRow, ctx: { now: Date }): Promise<void>;
}

export type TaskHandlers = ReadonlyMap<string, TaskHandler>;
