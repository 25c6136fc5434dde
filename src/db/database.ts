import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { PGliteDialect } from './pglite-dialect.js';
import { PreparingClient } from './prepared.js';
import type { Database } from './types.js';
import { acquireDataDirLock } from './data-dir-lock.js';

export type Db = Kysely<Database>;

/** One database, whichever engine is behind it: the app only ever sees `db` and `listen`. */
export interface DatabaseHandle {
  readonly db: Db;
  readonly kind: 'pg' | 'pglite';
  /** Resolves when the database answers a trivial query (readiness). */
  ping(): Promise<void>;
  /** Calls `onNotify` for each NOTIFY on `channel` until the returned function is called. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
  /** The connections' use now (metrics). The embedded database has one session: `max` 1. */
  poolStats(): PoolStats;
  /** Embedded database only: a gzipped copy of its data folder (backups, test templates). */
  dumpDataDir?(): Promise<Blob>;
}

export interface PoolStats {
  max: number;
  /** Connections open, idle or busy. */
  total: number;
  idle: number;
  /** Queries waiting for a connection. */
  waiting: number;
}

export interface DatabaseOptions {
  /** A postgres:// URL: use a real PostgreSQL through `pg`. */
  databaseUrl?: string | undefined;
  /** Folder for the embedded database; `memory://` keeps it in memory (tests). */
  dataDir?: string | undefined;
  /** A PGlite data-dir dump to start from (tests load a migrated template this way). */
  loadDataDir?: Blob | File | undefined;
  /**
   * In-memory embedded database only (`memory://`): PostgreSQL's `shared_buffers` (PGlite's default, 128MB, when
   * unset). Starting PGlite clears that much memory: the tests' small throwaway databases start in half the time with
   * less. A start parameter, so the data folder's postgresql.conf is left as it is.
   */
  sharedBuffers?: string | undefined;
  poolSize?: number;
  log?: Logger;
}

// int8 (ids, counts) as numbers: every id this service hands out fits in 2^53.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

const ping = async (db: Db): Promise<void> => void (await sql`select 1`.execute(db));

export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options) : openPglite(options);
}

function openPostgres(url: string, options: DatabaseOptions): DatabaseHandle {
  const max = options.poolSize ?? 10;
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types,
    application_name: 'pcc-2fa',
    // Never hang a request on a lost database: a connection comes within 5 s or the call fails (503); a statement
    // runs 30 s at most on the server, and the client gives up on an answer 5 s after that (a peer gone silent).
    connectionTimeoutMillis: 5_000,
    statement_timeout: 30_000,
    query_timeout: 35_000,
    keepAlive: true,
    // The hot reads registered in prepared.ts run as named prepared statements.
    Client: PreparingClient,
  });
  pool.on('error', (err) => options.log?.error({ err }, 'idle database connection failed'));
  // A connection lost while checked out (a query or a transaction in progress) fails its query, which the caller sees,
  // and also emits 'error' on its client, which the pool listens to only while the client is idle: without this
  // listener that event was uncaught, and a database restart killed the process.
  pool.on('connect', (client) => {
    client.on('error', (err) => options.log?.warn({ err }, 'database connection lost'));
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const listeners = new Set<pg.Client>();

  return {
    db,
    kind: 'pg',
    ping: () => ping(db),
    poolStats: () => ({ max, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async listen(channel, onNotify) {
      // A dedicated connection: LISTEN must stay on one session. It reconnects after a failure; the worker's
      // polling covers notifications lost meanwhile.
      let client: pg.Client | undefined;
      let stopped = false;
      const connect = async (): Promise<void> => {
        const c = new pg.Client({ connectionString: url, types, application_name: 'pcc-2fa-listen' });
        c.on('notification', (msg) => {
          if (msg.channel === channel) onNotify(msg.payload ?? '');
        });
        c.on('error', (err) => {
          options.log?.warn({ err }, 'LISTEN connection lost, reconnecting');
          listeners.delete(c);
          c.end().catch(() => undefined);
          if (!stopped) reconnect(1);
        });
        try {
          await c.connect();
          await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        } catch (err) {
          c.end().catch(() => undefined);
          throw err;
        }
        if (stopped) {
          await c.end();
          return;
        }
        client = c;
        listeners.add(c);
      };
      // After a loss, tries again until it works (the database may be down for a while): 1 s, then doubling to 30 s.
      const reconnect = (attempt: number) => {
        setTimeout(
          () =>
            void connect().catch((err: unknown) => {
              if (stopped) return;
              options.log?.warn({ err, attempt }, 'LISTEN connection failed, retrying');
              reconnect(attempt + 1);
            }),
          Math.min(30_000, 1000 * 2 ** (attempt - 1)),
        ).unref();
      };
      await connect();
      return async () => {
        stopped = true;
        if (client) {
          listeners.delete(client);
          await client.end().catch(() => undefined);
        }
      };
    },
    async close() {
      await Promise.all([...listeners].map((c) => c.end().catch(() => undefined)));
      await db.destroy();
    },
  };
}

async function openPglite(options: DatabaseOptions): Promise<DatabaseHandle> {
  const dataDir = options.dataDir ?? './data';
  let releaseLock = async (): Promise<void> => undefined;
  let pglite: PGlite;
  if (dataDir.startsWith('memory://')) {
    const startParams = options.sharedBuffers
      ? [...PGlite.defaultStartParams, '-c', `shared_buffers=${options.sharedBuffers}`]
      : undefined;
    pglite = new PGlite({ loadDataDir: options.loadDataDir, startParams });
  } else {
    if (options.sharedBuffers) throw new Error('sharedBuffers is for in-memory databases only');
    const dir = path.resolve(dataDir);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // PGlite is one process's database: a second process on the same folder would corrupt it.
    releaseLock = acquireDataDirLock(dir);
    pglite = new PGlite({ dataDir: path.join(dir, 'pgdata'), loadDataDir: options.loadDataDir });
  }
  try {
    await pglite.waitReady;
  } catch (err) {
    await releaseLock();
    throw err;
  }
  const dialect = new PGliteDialect(pglite);
  const db = new Kysely<Database>({ dialect });
  return {
    db,
    kind: 'pglite',
    ping: () => ping(db),
    poolStats: () => {
      const { busy, waiting } = dialect.sessionStats();
      return { max: 1, total: 1, idle: busy ? 0 : 1, waiting };
    },
    async listen(channel, onNotify) {
      return pglite.listen(channel, onNotify);
    },
    async close() {
      await db.destroy();
      await releaseLock();
    },
    async dumpDataDir() {
      return pglite.dumpDataDir('gzip');
    },
  };
}
