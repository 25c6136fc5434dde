import type { Logger } from 'pino';
import type { Config } from './config.js';
import { openDatabase, type DatabaseHandle } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';

/** Opens the configured database and brings its schema up to date. */
export async function openMigratedDatabase(config: Config, log: Logger): Promise<DatabaseHandle> {
  const handle = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, log });
  try {
    const applied = await migrateToLatest(handle.db);
    if (applied.length > 0) log.info({ migrations: applied }, 'migrations applied');
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}
