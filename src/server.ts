import closeWithGrace from 'close-with-grace';
import { buildApp, publicUrlOf } from './app.js';
import { systemClock } from './clock.js';
import { loadConfig, metricsHostOf, seedsDemo, startupWarnings } from './config.js';
import { startMetricsListener, type MetricsListener } from './metrics/http.js';
import { createLogger, loggerOptions } from './logger.js';
import { openMigratedDatabase, secretBoxFor, tlsOptions } from './runtime.js';
import { demoBanner, seedDemo } from './seed.js';
import { hashingWarnings } from './security/passwords.js';
import os from 'node:os';
import { senderFor } from './notify/provider.js';
import { buildWorker } from './composition.js';
import { runHandedCommand } from './commands.js';
import { openControlSocket, type ControlSocket } from './control-socket.js';

/** The process: configuration, database, HTTP server, task worker, and a graceful stop on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config;
  let sender;
  try {
    config = loadConfig();
    // Where SMS go is part of the configuration: a missing SMS_PROVIDER stops the start like any bad setting.
    sender = senderFor(config);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(78); // EX_CONFIG
  }
  const log = createLogger(config.LOG_LEVEL);
  for (const warning of [...startupWarnings(config), ...hashingWarnings()]) log.warn(warning);
  const handle = await openMigratedDatabase(config, log);
  log.info({ database: handle.kind === 'pg' ? 'postgresql' : `embedded (${config.DATA_DIR})` }, 'database ready');

  const secretBox = secretBoxFor(config, log);
  const app = await buildApp({ handle, config, logger: loggerOptions(config.LOG_LEVEL), secretBox, https: tlsOptions(config) });
  if (config.AUDIT_RETENTION_DAYS > 0 && !(await app.services.audit.mayExpire())) {
    log.warn(
      'AUDIT_RETENTION_DAYS is set but the database role may not run audit_delete_before: each run of the retention ' +
        'will fail and no event will be deleted (GRANT EXECUTE ON FUNCTION audit_delete_before(timestamptz, integer), ' +
        'or set AUDIT_RETENTION_DAYS to 0)',
    );
  }
  const seed = seedsDemo(config) ? await seedDemo(handle.db, app.services.services, app.services.auth) : undefined;
  const worker = buildWorker({
    handle,
    services: app.services,
    box: secretBox,
    clock: systemClock,
    config,
    log: log.child({ component: 'worker' }),
    workerId: `${os.hostname()}:${process.pid}`,
    sender,
  });

  app.services.metrics.collectProcessMetrics();
  let metricsListener: MetricsListener | undefined;
  let control: ControlSocket | undefined;

  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'stopping after an uncaught error');
    else log.info({ signal }, 'stopping: no new requests, finishing those in flight and the current task');
    // app.close() stops accepting connections and waits for in-flight requests; the worker finishes its task.
    await Promise.all([app.close(), worker.stop(), metricsListener?.close(), control?.close()]);
    await handle.close();
    log.info('stopped');
  });

  // The embedded database is this process's alone: the CLI hands its commands over, and they run here.
  if (handle.kind === 'pglite') {
    const base = { db: handle.db, config, app: app.services, box: secretBox };
    control = await openControlSocket({
      dataDir: config.DATA_DIR,
      log: log.child({ component: 'control' }),
      execute: (argv, stdin) => runHandedCommand(argv, stdin, base),
    });
  }
  await app.listen({ port: config.PORT, host: config.HOST });
  if (config.METRICS_PORT !== undefined) {
    metricsListener = await startMetricsListener({
      metrics: app.services.metrics,
      host: metricsHostOf(config),
      port: config.METRICS_PORT,
      token: config.METRICS_TOKEN,
      onError: (err) => log.error({ err }, 'metrics scrape failed'),
    });
    log.info({ url: metricsListener.url }, `metrics listening at ${metricsListener.url}`);
  }
  if (config.WORKER_ENABLED) await worker.start();
  // Straight to the terminal, once, never through the logger: it holds a password and a client secret.
  if (seed) process.stdout.write(demoBanner(seed, publicUrlOf(config)));
}

main().catch((err: unknown) => {
  process.stderr.write(`pcc-2fa failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
