/**
 * The bench's data, made through the service's own code (dist/) before the server starts, in the bench's process:
 * `users` users with a password and a TOTP secret (their addUser tasks applied by a worker here; each returned with
 * its password hash, for the bare argon2id baseline), then `entries`
 * twoFAWhitelist additions left queued, for the server's worker to drain (scenario f). Runs with the server's
 * environment, so the same database and the same SECRET_KEYS.
 */
import { generateSecret } from 'otplib';

export async function seed(root, env, { service, users, entries, password }) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const dist = (p) => import(`${root}/dist/${p}`);
    const [{ loadConfig }, { createLogger }, { openMigratedDatabase, secretBoxFor }, { buildServices, buildWorker }] =
      await Promise.all([dist('config.js'), dist('logger.js'), dist('runtime.js'), dist('composition.js')]);
    const { systemClock } = await dist('clock.js');
    const { contexts } = await dist('security/contexts.js');
    const config = loadConfig();
    const log = createLogger('warn');
    const handle = await openMigratedDatabase(config, log);
    const box = secretBoxFor(config, log);
    const services = buildServices({ db: handle.db, box, clock: systemClock, config });
    const actor = { login: 'bench', ip: '127.0.0.1' };
    try {
      // Four at a time: argon2id hashes each password in libuv's threads, the rest waits on the service's lock.
      const people = Array.from({ length: users }, (_, i) => ({ name: `bench${i}`, secret: generateSecret({ length: 20 }) }));
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < people.length) await services.users.create(service, { name: people[next++].name, password }, actor);
        }),
      );
      const worker = buildWorker({ handle, services, box, clock: systemClock, config, log, workerId: 'bench-seed' });
      await worker.drain();
      const rows = await handle.db
        .selectFrom('pcc_user')
        .select(['user_id', 'name', 'password_hash'])
        .where('service_name', '=', service)
        .execute();
      const byName = new Map(rows.map((r) => [r.name, r]));
      for (const p of people) {
        const row = byName.get(p.name);
        if (row === undefined) throw new Error(`seed: user ${p.name} was not created`);
        const userId = row.user_id;
        // The very hash the server verifies at each login: the bare argon2id baseline verifies it too.
        p.hash = row.password_hash;
        await handle.db
          .updateTable('pcc_user')
          .set({ totp_secret_ciphertext: box.seal(p.secret, contexts.totpSecret(userId)) })
          .where('user_id', '=', userId)
          .execute();
      }
      const started = Date.now();
      for (let i = 0; i < entries; i++) {
        const ip = `11.${Math.floor(i / 250)}.${i % 250}.0/24`;
        await services.whitelist.add(service, { ip, description: `bench entry ${i}` }, actor);
      }
      return { people, queueSeconds: (Date.now() - started) / 1000 };
    } finally {
      await handle.close();
    }
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}
