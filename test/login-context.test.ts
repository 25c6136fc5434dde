import { sql } from 'kysely';
import t from 'tap';
import { loginContext } from '../src/features/secure/repository.js';
import { buildTestApp } from './helpers/app.js';

/**
 * A login reads the service, the user and where the client stands in one statement (src/features/secure/repository.ts
 * `loginContext`). It must answer exactly what the features' own reads answer on the same data.
 */
t.test("the login's one read answers what the features' own reads answer; its session quota reads by index", async (t) => {
  const ctx = await buildTestApp(t);
  const { db } = ctx.handle;
  const { services, users, allowedNetworks, whitelist } = ctx.app.services;
  const svc = await ctx.newService();
  const other = await ctx.newService();

  const userRow = (serviceName: string, name: string, extra: Record<string, unknown> = {}) =>
    db
      .insertInto('pcc_user')
      .values({ service_name: serviceName, name, state: 'delivered', password_hash: `hash of ${name}`, ...extra })
      .returning('user_id')
      .executeTakeFirstOrThrow();
  await userRow(svc, 'Alice', { email: 'alice@example.com', phone_number: '+33.612345678', totp_secret_ciphertext: 'sealed' });
  const gone = await userRow(svc, 'bob');
  await db.updateTable('pcc_user').set({ deleted_at: ctx.clock.now() }).where('user_id', '=', gone.user_id).execute();
  await userRow(svc, 'BOB', { activation_state: 'disabled', expiration_date: ctx.clock.now() });
  await userRow(other, 'carol');

  const allowed = (serviceName: string, network: string, state: string, deleted = false) =>
    db
      .insertInto('allowed_network')
      .values({ service_name: serviceName, network, state, ...(deleted ? { deleted_at: ctx.clock.now() } : {}) } as never)
      .execute();
  await allowed(svc, '192.0.2.0/24', 'allowed');
  await allowed(svc, '198.51.100.0/24', 'toDelete');
  await allowed(svc, '203.0.113.0/25', 'allowed', true);
  await allowed(svc, '2001:db8:1::/48', 'toUpdate');
  await allowed(other, '10.0.0.0/8', 'allowed');

  const entry = (serviceName: string, ip: string, cidrNetmask: number, state: string) =>
    db
      .insertInto('two_fa_whitelist')
      .values({ service_name: serviceName, ip, cidr_netmask: cidrNetmask, description: 'test', state } as never)
      .execute();
  await entry(svc, '192.0.2.128', 25, 'enabled');
  await entry(svc, '198.51.100.0', 24, 'enabling');
  await entry(svc, '203.0.113.7', 32, 'removing');
  await entry(svc, '2001:db8:1:2::', 64, 'enabled');
  await entry(other, '10.1.0.0', 16, 'enabled');

  const names = ['alice', 'ALICE', 'bob', 'BOB', 'carol', 'nobody', "o'neil"];
  const addresses = [
    '192.0.2.1',
    '192.0.2.200',
    '198.51.100.9',
    '203.0.113.7',
    '10.1.2.3',
    '2001:db8:1:2::5',
    '2001:db8:1:3::5',
    '127.0.0.1',
  ];
  let compared = 0;
  for (const serviceName of [svc, other]) {
    const service = await services.find(serviceName);
    const usersByName = new Map(await Promise.all(names.map(async (n) => [n, await users.findByName(serviceName, n)] as const)));
    const where = new Map(
      await Promise.all(
        addresses.map(
          async (ip) =>
            [
              ip,
              {
                allowedNetwork: await allowedNetworks.isAllowed(serviceName, ip),
                whitelisted: await whitelist.bypasses(serviceName, ip),
              },
            ] as const,
        ),
      ),
    );
    for (const name of names) {
      for (const ip of addresses) {
        const context = await loginContext(db, serviceName, name, ip);
        t.same(context, { service, user: usersByName.get(name), ...where.get(ip) }, `${serviceName} ${name} ${ip}`, {
          diagnostic: false,
        });
        compared++;
      }
    }
  }
  t.equal(compared, 2 * names.length * addresses.length);
  t.ok((await loginContext(db, svc, 'alice', '192.0.2.1'))?.allowedNetwork, 'the data covers a yes');
  t.ok((await loginContext(db, svc, 'alice', '192.0.2.200'))?.whitelisted, 'the data covers a yes');
  t.equal(await loginContext(db, 'pcc-0-0-0-0', 'alice', '192.0.2.1'), undefined, 'no service: nothing');

  if (ctx.handle.kind === 'pg') {
    const prepared = await db.transaction().execute(async (trx) => {
      await loginContext(trx, svc, 'alice', '192.0.2.1');
      const { rows } = await sql<{ name: string }>`SELECT name FROM pg_prepared_statements`.execute(trx);
      return rows.map((r) => r.name);
    });
    t.ok(prepared.includes('pcc_login_context'), `prepared on the connection: ${prepared.join(', ')}`);
  }

  // The session quota of `open_login_session` (migrations/0011, 0013) reads the service's live sessions by index,
  // not every session of every service. With sequential scans disabled, a plan without a usable index still scans the table, at a prohibitive cost.
  const plan = await db.transaction().execute(async (trx) => {
    await sql`SET LOCAL enable_seqscan = off`.execute(trx);
    const { rows } = await sql<{ 'QUERY PLAN': string }>`EXPLAIN
      SELECT count(DISTINCT us.user_id) FROM user_session AS us
       WHERE us.service_name = 'pcc-1-2-3-4' AND us.ended_at IS NULL AND us.expires_at > now()`.execute(trx);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  });
  t.match(plan, /user_session_service_live_idx/, plan);
  t.notMatch(plan, /Seq Scan/);

  // Its whitelist test finds the entries that contain the client's address by index (migrations/0016), not by reading
  // every entry of the service: 2.9 ms of PostgreSQL per login with 10,000 entries, 0.07 ms with the index.
  const whitelistPlan = await db.transaction().execute(async (trx) => {
    await sql`SET LOCAL enable_seqscan = off`.execute(trx);
    const { rows } = await sql<{ 'QUERY PLAN': string }>`EXPLAIN
      SELECT EXISTS (SELECT 1 FROM two_fa_whitelist AS w
                      WHERE w.service_name = 'pcc-1-2-3-4' AND w.state = 'enabled' AND '192.0.2.1'::inet <<= w.network)`.execute(
      trx,
    );
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  });
  t.match(whitelistPlan, /two_fa_whitelist_enabled_network_idx/, whitelistPlan);
});
