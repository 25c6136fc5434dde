import type { CompiledQuery, Kysely, QueryResult, RawBuilder, Transaction } from 'kysely';
import pg from 'pg';
import type { Database } from './types.js';

/**
 * The hot reads, run as named prepared statements on PostgreSQL: each connection parses and plans them once, then
 * only binds parameters (PostgreSQL's CPU per call is what the read path is bound by, beside the client's own).
 * Registered by their SQL text; every other statement goes as before, unnamed. A prepared statement names its
 * columns (never `select *`): a migration that adds a column to the table then leaves it valid on connections that
 * prepared it before.
 */
const names = new Map<string, string>();
const texts = new Map<string, string>();

export function prepared<T>(name: string, query: CompiledQuery<T>): CompiledQuery<T> {
  const statement = `pcc_${name}`;
  const known = names.get(query.sql);
  // Registered already under this name (every call of `executePrepared`): nothing more to check.
  if (known === statement) return query;
  if (/\bselect \*/i.test(query.sql)) throw new Error(`prepared statement ${name} must name its columns`);
  if (known !== undefined && known !== statement) throw new Error(`${name}: the same statement is already prepared as ${known}`);
  // One name, one text: PostgreSQL refuses a second text under a name a connection has prepared (a text built from
  // its values would fail there, at run time, on the second value).
  const text = texts.get(statement);
  if (text !== undefined && text !== query.sql) throw new Error(`${name}: another statement is already prepared under this name`);
  names.set(query.sql, statement);
  texts.set(statement, query.sql);
  return query;
}

/** Runs a raw statement (whose text does not depend on its values) as the named prepared statement `name`. */
export function executePrepared<T>(
  db: Kysely<Database> | Transaction<Database>,
  name: string,
  query: RawBuilder<T>,
): Promise<QueryResult<T>> {
  return db.executeQuery(prepared(name, query.compile(db)));
}

/**
 * pg's client, which runs a registered statement by its name. Kysely's PostgreSQL driver calls `query(text, values)`;
 * anything else goes through unchanged.
 */
export class PreparingClient extends pg.Client {
  // pg's `query` has many overloads; this one forwards every call and names the registered texts.
  override query(...args: unknown[]): never {
    const [text, values] = args;
    const name = typeof text === 'string' && args.length === 2 && Array.isArray(values) ? names.get(text) : undefined;
    const forward = super.query as unknown as (...a: unknown[]) => never;
    return name === undefined ? forward.apply(this, args) : forward.call(this, { name, text, values });
  }
}
