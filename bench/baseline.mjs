/**
 * The bench's baseline: a bare Fastify + pg server (or PGlite, for the embedded run) doing the same one-row indexed
 * SELECT as `GET …/twoFAWhitelist/{id}`, with the same pool size, and nothing else: no authentication, no hooks, no
 * query builder. `POST /verify` is the bare stack of a login: an argon2id verification of the hash it is sent, nothing
 * else. Started by bench/run.mjs as a child process; prints `listening <port>` when ready.
 *
 *   BASELINE_DATABASE_URL=postgres://… BASELINE_POOL_SIZE=10 node bench/baseline.mjs
 */
import Fastify from 'fastify';
import pg from 'pg';
import { verify } from '@node-rs/argon2';

const SQL =
  'SELECT id, host(ip) AS ip, cidr_netmask, description, state FROM two_fa_whitelist WHERE service_name = $1 AND id = $2';

async function database() {
  const url = process.env.BASELINE_DATABASE_URL;
  if (url) {
    const pool = new pg.Pool({ connectionString: url, max: Number(process.env.BASELINE_POOL_SIZE ?? 10) });
    return { query: async (sql, params) => (await pool.query(sql, params)).rows, close: () => pool.end() };
  }
  // Embedded: PGlite in memory with the same table, index and rows (the service's own data folder is its server's).
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite();
  await db.exec(`CREATE TABLE two_fa_whitelist (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, service_name text NOT NULL,
    ip inet NOT NULL, cidr_netmask smallint NOT NULL, description text NOT NULL, state text NOT NULL);
    CREATE INDEX ON two_fa_whitelist (service_name, id);`);
  for (let i = 1; i <= 10; i++) {
    await db.query(
      'INSERT INTO two_fa_whitelist (service_name, ip, cidr_netmask, description, state) VALUES ($1, $2, 32, $3, $4)',
      [process.env.BASELINE_SERVICE ?? 'pcc-bench', `198.51.100.${i}`, `bench entry ${i}`, 'enabled'],
    );
  }
  return { query: async (sql, params) => (await db.query(sql, params)).rows, close: () => db.close() };
}

const db = await database();
const app = Fastify({ logger: false });
app.get('/row/:serviceName/:id', async (request, reply) => {
  const rows = await db.query(SQL, [request.params.serviceName, Number(request.params.id)]);
  if (rows.length === 0) return reply.code(404).send({ message: 'not found' });
  const r = rows[0];
  return { id: Number(r.id), ip: r.ip, cidrNetmask: r.cidr_netmask, description: r.description, state: r.state };
});
// The bare stack for logins: an HTTP request that verifies an argon2id hash, and nothing else.
app.post('/verify', async (request, reply) => {
  const { hash, password } = request.body;
  const ok = await verify(hash, password);
  return reply.code(ok ? 200 : 401).send({ ok });
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening ${app.server.address().port}\n`);
process.on('SIGTERM', async () => {
  await app.close();
  await db.close();
  process.exit(0);
});
