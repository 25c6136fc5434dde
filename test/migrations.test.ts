import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import t from 'tap';
import { openDatabase, type Db } from '../src/db/database.js';
import { MIGRATIONS_DIR, migrateToLatest } from '../src/db/migrate.js';
import { engine, freshDatabase, testDatabaseUrl } from './helpers/db.js';

const migrationNames = fs
  .readdirSync(MIGRATIONS_DIR)
  .filter((f) => f.endsWith('.sql'))
  .sort()
  .map((f) => f.replace(/\.sql$/, ''));

const appliedMigrations = async (db: Db) => {
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
  return rows.map((r) => r.name);
};

t.test('migrating an already-migrated database applies nothing and changes nothing', async (t) => {
  const { handle, drop } = await freshDatabase();
  t.teardown(async () => {
    await handle.close();
    await drop();
  });
  const before = await appliedMigrations(handle.db);
  t.strictSame(before, migrationNames, 'the test database is at the latest migration');
  t.strictSame(await migrateToLatest(handle.db), []);
  t.strictSame(await appliedMigrations(handle.db), before);
});

t.test(
  'four instances migrating one empty database at once all succeed and apply each migration once',
  { skip: engine === 'pg' ? false : 'needs PostgreSQL (TEST_DATABASE_URL)' },
  async (t) => {
    const adminUrl = testDatabaseUrl as string;
    const name = `pcc_migrate_${randomBytes(6).toString('hex')}`;
    const admin = async (query: string) => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(query);
      } finally {
        await client.end();
      }
    };
    await admin(`CREATE DATABASE ${name}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const handles = await Promise.all([1, 2, 3, 4].map(() => openDatabase({ databaseUrl: url.toString(), poolSize: 2 })));
    t.teardown(async () => {
      await Promise.all(handles.map((h) => h.close()));
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    });

    const results = await Promise.all(handles.map((h) => migrateToLatest(h.db)));
    t.strictSame(results.flat().sort(), migrationNames, 'each migration applied by exactly one instance');
    t.strictSame(await appliedMigrations(handles[0]!.db), migrationNames, 'recorded once each');
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from two_fa_whitelist`.execute(handles[1]!.db);
    t.equal(rows[0]?.n, 0, 'the schema is in place');
  },
);
