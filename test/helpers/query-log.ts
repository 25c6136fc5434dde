import type { CompiledQuery, DatabaseConnection } from 'kysely';
import type { Db } from '../../src/db/database.js';

/**
 * Every SQL statement `database` runs while `fn` runs, transactions included: the connections the executor hands
 * out are wrapped for the time of `fn`, nothing in src is touched. Best-effort writes that run after a reply (a
 * credential's `last_use`) get 50 ms to show up.
 */
export async function recordQueries(database: Db, fn: () => Promise<void>): Promise<string[]> {
  const executor = database.getExecutor();
  const statements: string[] = [];
  const original = executor.provideConnection.bind(executor);
  const recording = (connection: DatabaseConnection): DatabaseConnection => ({
    executeQuery: (query: CompiledQuery) => {
      statements.push(query.sql);
      return connection.executeQuery(query);
    },
    streamQuery: (query: CompiledQuery, chunkSize?: number) => connection.streamQuery(query, chunkSize),
  });
  executor.provideConnection = <T>(consumer: (connection: DatabaseConnection) => Promise<T>) =>
    original((connection) => consumer(recording(connection)));
  try {
    await fn();
    await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    Reflect.deleteProperty(executor, 'provideConnection');
  }
  return statements;
}

/** The statement's verb, lower case: `select`, `update`, `begin`… */
export const verb = (statement: string) => (statement.trim().split(/\s+/)[0] ?? '').toLowerCase();
