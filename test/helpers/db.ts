import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { sql, type Kysely, type Transaction } from 'kysely';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { MIGRATIONS_DIR, migrateToLatest } from '../../src/db/migrate.js';
import type { Database } from '../../src/db/types.js';

/**
 * A fresh, migrated database for one test file. With TEST_DATABASE_URL (a PostgreSQL server) each file gets its own
 * database cloned from a migrated template; without it, an in-memory PGlite loaded from a migrated snapshot.
 * Either way no file sees another's rows.
 */
export const testDatabaseUrl = process.env.TEST_DATABASE_URL || undefined;
export const engine = testDatabaseUrl ? 'pg' : 'pglite';

const migrationsHash = (() => {
  const h = createHash('sha256');
  for (const f of fs.readdirSync(MIGRATIONS_DIR).sort()) h.update(f).update(fs.readFileSync(path.join(MIGRATIONS_DIR, f)));
  return h.digest('hex').slice(0, 12);
})();

export async function freshDatabase(): Promise<{ handle: DatabaseHandle; url?: string; drop: () => Promise<void> }> {
  return testDatabaseUrl ? freshPostgres(testDatabaseUrl) : freshPglite();
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function freshPostgres(url: string) {
  const template = `pcc_template_${migrationsHash}`;
  await withAdmin(url, async (admin) => {
    // One test file creates the template; the others wait on the lock, then find it.
    await admin.query('SELECT pg_advisory_lock(hashtext($1))', [template]);
    try {
      const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
      if (!rowCount) {
        await admin.query(`CREATE DATABASE ${template}`);
        const handle = await openDatabase({ databaseUrl: withDatabase(url, template), poolSize: 1 });
        await migrateToLatest(handle.db);
        await handle.close();
      }
    } finally {
      await admin.query('SELECT pg_advisory_unlock(hashtext($1))', [template]);
    }
  });
  const name = `pcc_test_${randomBytes(6).toString('hex')}`;
  await withAdmin(url, async (admin) => {
    // CREATE DATABASE … TEMPLATE fails while another file is cloning the same template: retry.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
        // A test database is thrown away: its commits need not wait for the WAL to reach the disk.
        await admin.query(`ALTER DATABASE ${name} SET synchronous_commit = off`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== '55006' || attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
      }
    }
  });
  const dbUrl = withDatabase(url, name);
  const handle = await openDatabase({ databaseUrl: dbUrl });
  return {
    handle,
    url: dbUrl,
    drop: async () => {
      await withAdmin(url, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function pgliteTemplateFile(): Promise<string> {
  // Uncompressed: PGlite reads a tar directly (a gzipped one it first tries to read as a tar, then decompresses).
  const file = path.join(os.tmpdir(), `pcc-2fa-pglite-template-${migrationsHash}.tar`);
  if (!fs.existsSync(file)) {
    const lock = `${file}.lock`;
    let mine = false;
    try {
      fs.mkdirSync(lock);
      mine = true;
    } catch {
      // another test file builds it
    }
    if (mine) {
      try {
        const handle = await openDatabase({ dataDir: 'memory://' });
        await migrateToLatest(handle.db);
        if (!handle.dumpDataDir) throw new Error('not a PGlite handle');
        const dump = await handle.dumpDataDir();
        const tmp = `${file}.${process.pid}`;
        fs.writeFileSync(tmp, zlib.gunzipSync(Buffer.from(await dump.arrayBuffer())));
        fs.renameSync(tmp, file);
        await handle.close();
      } finally {
        fs.rmSync(lock, { recursive: true, force: true });
      }
    } else {
      const deadline = Date.now() + 120_000;
      while (!fs.existsSync(file)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${file}`);
        if (!fs.existsSync(lock)) return pgliteTemplateFile();
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  return file;
}

/**
 * Fills an empty DATA_DIR with the migrated template, as the server lays it out (`<dir>/pgdata`): a server started on
 * it skips initdb and the migrations, which a test about something else need not wait for (about 4 s).
 */
export async function seedPgliteDataDir(dir: string): Promise<void> {
  const pgdata = path.join(dir, 'pgdata');
  fs.mkdirSync(pgdata, { recursive: true });
  execFileSync('tar', ['-xf', await pgliteTemplateFile(), '-C', pgdata], { stdio: 'ignore' });
}

let template: Blob | undefined;

async function freshPglite() {
  template ??= new Blob([fs.readFileSync(await pgliteTemplateFile())]);
  const handle = await openDatabase({
    dataDir: 'memory://',
    loadDataDir: template,
    // A throwaway database of a few hundred rows: 16MB of buffers instead of 128MB, which PGlite clears at each start.
    sharedBuffers: '16MB',
  });
  // A PGlite closed before its first query never lets the process exit: wait until it answers.
  await handle.ping();
  return { handle, drop: async () => undefined };
}

/**
 * PostgreSQL only: resolves once `n` sessions of this database wait for a lock, for tests that interleave
 * transactions step by step (a statement started, then shown to be waiting, before the next step).
 */
export async function lockWaiters(db: Kysely<Database>, n = 1): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND datname = current_database()`.execute(db);
    if (rows[0]!.n >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`never ${n} session(s) waiting for a lock`);
}

/**
 * What this transaction's scans of `table` have done so far (`pg_stat_xact_user_tables`, visible before the commit):
 * its sequential scans, and the rows its sequential and index scans read.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema
export async function tableScans(trx: Kysely<any>, table: string): Promise<{ seqScans: number; rowsRead: number }> {
  const { rows } = await sql<{ seq: string; read: string }>`SELECT seq_scan AS seq,
      seq_tup_read + coalesce(idx_tup_fetch, 0) AS read FROM pg_stat_xact_user_tables WHERE relname = ${table}`.execute(trx);
  return { seqScans: Number(rows[0]!.seq), rowsRead: Number(rows[0]!.read) };
}

const ROLLBACK = new Error('rolled back');

/** Runs `fn` in a transaction that is then rolled back, whatever it wrote: a test's data for one statement's plan. */
export async function inRolledBackTransaction<DB>(db: Kysely<DB>, fn: (trx: Transaction<DB>) => Promise<void>) {
  try {
    await db.transaction().execute(async (trx) => {
      await fn(trx);
      throw ROLLBACK;
    });
  } catch (err) {
    if (err !== ROLLBACK) throw err;
  }
}
