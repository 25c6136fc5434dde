import t from 'tap';
import { generate } from 'otplib';
import { base32Decode, matchTotp, newTotpSecret } from '../src/security/totp.js';

/** TOTP codes as every authenticator app makes them: RFC 6238 with SHA-1, 6 digits, 30-second steps. */

// RFC 6238, appendix B: the SHA-1 secret is the ASCII of "12345678901234567890"; its 8-digit values, cut to 6.
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const RFC_VECTORS: Array<[number, string]> = [
  [59, '287082'],
  [1111111109, '081804'],
  [1111111111, '050471'],
  [1234567890, '005924'],
  [2000000000, '279037'],
  [20000000000, '353130'],
];

t.test("RFC 6238's test vectors", async (t) => {
  t.same(base32Decode(RFC_SECRET), Buffer.from('12345678901234567890'), 'the secret decodes');
  for (const [seconds, code] of RFC_VECTORS) {
    t.equal(await matchTotp(RFC_SECRET, code, new Date(seconds * 1000)), Math.floor(seconds / 30), `T = ${seconds}`);
  }
});

t.test('a code matches its step and the steps either side, no further', async (t) => {
  const secret = newTotpSecret();
  const now = new Date('2026-11-30T06:00:10Z');
  const step = Math.floor(now.getTime() / 30_000);
  for (const delta of [-2, -1, 0, 1, 2]) {
    const code = await generate({ secret, epoch: (step + delta) * 30 });
    const expected = Math.abs(delta) <= 1 ? step + delta : undefined;
    t.equal(await matchTotp(secret, code, now), expected, `a code of step ${delta >= 0 ? '+' : ''}${delta}`);
  }
});

t.test("otplib's codes (what the tests and many clients make) match, for many secrets", async (t) => {
  let mismatches = 0;
  for (let i = 0; i < 200; i++) {
    const secret = newTotpSecret();
    const epoch = 1_700_000_000 + i * 7919;
    const code = await generate({ secret, epoch });
    if ((await matchTotp(secret, code, new Date(epoch * 1000))) !== Math.floor(epoch / 30)) mismatches++;
  }
  t.equal(mismatches, 0);
});

t.test('malformed codes and secrets match nothing', async (t) => {
  const now = new Date(59_000);
  for (const code of ['28708', '2870820', '28708a', ' 87082', '２８７０８２', '']) {
    t.equal(await matchTotp(RFC_SECRET, code, now), undefined, JSON.stringify(code));
  }
  t.equal(await matchTotp('not base32!', '287082', now), undefined, 'a secret that is not base32');
  t.equal(await matchTotp('', '287082', now), undefined, 'an empty secret');
  t.same(base32Decode('gezdgnbvgy3tqojqgezdgnbvgy3tqojq'), Buffer.from('12345678901234567890'), 'lower case reads');
  t.same(base32Decode('MZXW6==='), Buffer.from('foo'), 'padding is ignored');
  t.equal(base32Decode('MZXW1'), undefined, "'1' is not base32");
});
