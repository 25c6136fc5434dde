import t from 'tap';
import { buildTestApp } from './helpers/app.js';
import { addEntryOk } from './helpers/api.js';
import { secureKit, totpCode, type Person } from './helpers/secure.js';

/**
 * The login path sees the client address the way `TRUSTED_PROXIES` says: a forwarded header counts only from a trusted
 * proxy, walked from the right; IPv6 and IPv4-mapped clients match the allowed networks and the 2FA whitelist.
 */
const PROXY = '192.0.2.1';
const ctx = await buildTestApp(t, { env: { TRUSTED_PROXIES: PROXY } });
const kit = await secureKit(t, ctx);

/** A filtered service: 198.51.100.0/24 and 2001:db8:1::/48 allowed; one plain user. */
async function filteredService() {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  for (const network of ['198.51.100.0/24', '2001:db8:1::/48']) {
    const res = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/allowedNetwork`, { network });
    if (res.statusCode !== 200) throw new Error(`allowedNetwork ${network}: ${res.statusCode} ${res.body}`);
  }
  await kit.settle();
  await kit.api('POST', `/1.0/dedicatedCloud/${svc}/changeProperties`, { userAccessPolicy: 'filtered' });
  await kit.settle();
  return { svc, person };
}

const login = (svc: string, person: Person, remoteAddress: string, forwarded?: string, token?: string) =>
  ctx.app.inject({
    method: 'POST',
    url: `/secure/${svc}/session`,
    remoteAddress,
    headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded },
    payload: { login: person.name, password: person.password, ...(token ? { token } : {}) },
  });

t.test('a forwarded address from a peer that is not a trusted proxy is ignored', async (t) => {
  const { svc, person } = await filteredService();
  t.equal((await login(svc, person, '203.0.113.5', '198.51.100.7')).statusCode, 403, 'the forged allowed address does not help');
  t.equal((await login(svc, person, '198.51.100.7', '203.0.113.5')).statusCode, 200, 'nor does a forged outside one hurt');
});

t.test('through a trusted proxy the client is the right-most address the proxy did not add itself', async (t) => {
  const { svc, person } = await filteredService();
  t.equal((await login(svc, person, PROXY, '198.51.100.7')).statusCode, 200, 'the proxy forwards an allowed client');
  t.equal(
    (await login(svc, person, PROXY, '198.51.100.7, 203.0.113.9')).statusCode,
    403,
    'a client-written allowed address left of the real one is not believed',
  );
  t.equal((await login(svc, person, PROXY, '203.0.113.9, 198.51.100.7')).statusCode, 200);
});

t.test('IPv6 and IPv4-mapped clients match the allowed networks of their family', async (t) => {
  const { svc, person } = await filteredService();
  t.equal((await login(svc, person, '2001:db8:1::5')).statusCode, 200, 'inside the IPv6 network');
  t.equal((await login(svc, person, '2001:db8:2::5')).statusCode, 403, 'outside it');
  t.equal((await login(svc, person, '::ffff:198.51.100.7')).statusCode, 200, 'IPv4-mapped inside the IPv4 network');
  t.equal((await login(svc, person, '::ffff:203.0.113.7')).statusCode, 403, 'IPv4-mapped outside it');
  t.equal((await login(svc, person, PROXY, '2001:db8:1::9')).statusCode, 200, 'an IPv6 client through the proxy');
});

t.test('the 2FA whitelist matches IPv4-mapped and IPv6 clients, and forwarded addresses only from the proxy', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.enable2FA(svc, await kit.validator(svc));
  for (const network of ['198.51.100.0/24', '2001:db8:5::/48']) {
    const { taskId } = await addEntryOk(ctx.app, svc, network);
    // A 2FA bypass waits for a token validator (the validation gate).
    await kit.approve(svc, person, taskId);
  }
  t.equal((await login(svc, person, '::ffff:198.51.100.8')).statusCode, 200, 'IPv4-mapped: no code needed');
  t.equal((await login(svc, person, '2001:db8:5::8')).statusCode, 200, 'IPv6: no code needed');
  t.equal((await login(svc, person, PROXY, '198.51.100.8')).statusCode, 200, 'through the proxy: no code needed');
  t.equal((await login(svc, person, '203.0.113.5', '198.51.100.8')).statusCode, 401, 'a forged header: the code is needed');
  ctx.clock.advance(30_000);
  const code = await totpCode(ctx, person.secret!);
  t.equal((await login(svc, person, '203.0.113.5', '198.51.100.8', code)).statusCode, 200, 'and works with it');
});

t.test('canonicalIp: the plain IPv4 fast path gives what the full parse gives', async (t) => {
  const { canonicalIp } = await import('../src/security/addresses.js');
  const ipaddr = (await import('ipaddr.js')).default;
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
  const differ: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const ip = [next(), next(), next(), next()].join('.');
    if (canonicalIp(ip) !== ipaddr.process(ip).toString()) differ.push(ip);
  }
  t.strictSame(differ, [], '2,000 addresses: the same');
  for (const loose of ['010.0.0.1', '127.1', '0x7f.0.0.1', '1.2.3.4 ', '256.1.1.1', '1.2.3']) {
    t.equal(canonicalIp(loose), loose === '1.2.3.4 ' ? '1.2.3.4' : undefined, `${JSON.stringify(loose)}: the full rules`);
  }
});
