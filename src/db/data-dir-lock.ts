import fs from 'node:fs';
import path from 'node:path';

/** The data folder is locked by a live process: the CLI then hands its command to that process's control socket. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
    options: ErrorOptions,
  ) {
    super(
      `The embedded database in ${dir} is in use by process ${pid}. Stop it, or set DATA_DIR to another folder ` +
        '(or DATABASE_URL to a PostgreSQL server, which any number of instances can share).',
      options,
    );
    this.name = 'DataDirInUseError';
  }
}

/**
 * Takes `<dir>/pcc-2fa.pid` so that one process at a time opens the embedded database. A lock left by a process that
 * no longer exists (a crash, a kill -9) is taken over.
 */
export function acquireDataDirLock(dir: string): () => Promise<void> {
  const file = path.join(dir, 'pcc-2fa.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return async () => {
        try {
          if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(fs.readFileSync(file, 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new DataDirInUseError(dir, owner, { cause: err });
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new Error(`Could not lock ${file}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
