import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { openDatabase, type DatabaseHandle } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';
import { SecretBox, newMasterKeyText, parseMasterKeys } from './security/secret-box.js';

/** Opens the configured database and brings its schema up to date. */
export async function openMigratedDatabase(config: Config, log: Logger): Promise<DatabaseHandle> {
  const handle = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolSize: config.DATABASE_POOL_SIZE,
    log,
  });
  try {
    const applied = await migrateToLatest(handle.db);
    if (applied.length > 0) log.info({ migrations: applied }, 'migrations applied');
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * The keys that seal stored secrets. From SECRET_KEYS; on the embedded database without it, from
 * `<DATA_DIR>/secret-keys`, made once (mode 0600) so that `npm start` needs no setup. A shared PostgreSQL needs the
 * same keys on every instance, so there SECRET_KEYS is required.
 */
export function secretBoxFor(config: Config, log: Logger): SecretBox {
  if (config.SECRET_KEYS) return new SecretBox(parseMasterKeys(config.SECRET_KEYS));
  if (config.DATABASE_URL) {
    throw new Error(
      'SECRET_KEYS is required with DATABASE_URL (every instance must share it). Make one with: npm run cli -- keys new',
    );
  }
  const file = path.resolve(config.DATA_DIR, 'secret-keys');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, `${newMasterKeyText()}\n`, { mode: 0o600, flag: 'wx' });
    log.warn({ file }, 'SECRET_KEYS is not set: made a key for the embedded database; keep this file with the data');
  }
  return new SecretBox(parseMasterKeys(fs.readFileSync(file, 'utf8').trim()));
}

/** TLS_CERT and TLS_KEY, read once at start. */
export function tlsOptions(config: Config): { key: Buffer; cert: Buffer } | null {
  if (!config.TLS_CERT || !config.TLS_KEY) return null;
  return { cert: fs.readFileSync(config.TLS_CERT), key: fs.readFileSync(config.TLS_KEY) };
}
