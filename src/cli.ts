import { buildServices } from './composition.js';
import { systemClock } from './clock.js';
import { loadConfig } from './config.js';
import { commandFailure, findCommand, readStdin, USAGE } from './commands.js';
import { sendToServer } from './control-socket.js';
import type { DatabaseHandle } from './db/database.js';
import { DataDirInUseError } from './db/data-dir-lock.js';
import { createLogger } from './logger.js';
import { openMigratedDatabase, secretBoxFor } from './runtime.js';

/**
 * `npm run cli -- <command>`. Runs the command on the configured database, or, when a server holds the embedded
 * database, hands it to that server over its control socket (src/control-socket.ts): the database stays one
 * process's. Prints the command's JSON on stdout.
 */
async function main(argv: string[]): Promise<number> {
  const found = findCommand(argv);
  if (!found) {
    process.stderr.write(USAGE);
    return argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' ? 0 : 64;
  }
  const { command, args } = found;
  let handle: DatabaseHandle | undefined;
  try {
    let result: unknown;
    if (command.needsDb === false) {
      result = await command.run(args);
    } else {
      const config = loadConfig();
      // Logs go to stderr so that stdout stays pure JSON for scripts.
      const log = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL, true);
      try {
        handle = await openMigratedDatabase(config, log);
      } catch (err) {
        if (!(err instanceof DataDirInUseError)) throw err;
        // A server holds the embedded database: it runs the command. Standard input is read here and sent along.
        const stdin = command.readsStdin?.(args) ? await readStdin() : null;
        const reply = await sendToServer(err.dir, err.pid, argv, stdin);
        if (reply.exitCode !== 0 && 'error' in reply) {
          process.stderr.write(`${reply.error}\n${reply.usage ? `\n${USAGE}` : ''}`);
          return reply.exitCode;
        }
        process.stdout.write(`${JSON.stringify('result' in reply ? reply.result : null, null, 2)}\n`);
        return 0;
      }
      const box = secretBoxFor(config, log);
      const app = buildServices({ db: handle.db, box, clock: systemClock, config });
      result = await command.run({ db: handle.db, config, args, app, box, stdin: readStdin });
    }
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (err) {
    const failure = commandFailure(err);
    if (!failure) throw err;
    process.stderr.write(failure.usage ? `${failure.message}\n\n${USAGE}` : `${failure.message}\n`);
    return failure.exitCode;
  } finally {
    await handle?.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
