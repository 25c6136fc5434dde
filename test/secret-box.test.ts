import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import t from 'tap';
import { SecretBox, newMasterKeyText, parseMasterKeys, type MasterKey } from '../src/security/secret-box.js';

const key = (id: string): MasterKey => ({ id, key: randomBytes(32) });
const AAD = 'application:AK0123456789abcd';

/** Replaces part `index` (0 version, 1 key id, 2 iv, 3 body) of a sealed text. */
function withPart(sealed: string, index: number, change: (part: string) => string): string {
  const parts = sealed.split('.');
  parts[index] = change(parts[index]!);
  return parts.join('.');
}

function flipByte(b64: string, at: number): string {
  const bytes = Buffer.from(b64, 'base64url');
  bytes[at] = bytes[at]! ^ 0x01;
  return bytes.toString('base64url');
}

t.test('seal then open gives the plaintext back', async (t) => {
  const box = new SecretBox([key('k1')]);
  for (const text of ['EXEgWIz07P0HYwtQDs7cNIqCiQaWSuHF', '', 'é€😀 and \u0000 bytes', 'x'.repeat(10_000)]) {
    const sealed = box.seal(text, AAD);
    t.equal(box.open(sealed, AAD), text);
    if (text) t.notOk(sealed.includes(text), 'the sealed text does not contain the plaintext');
  }
});

t.test('the sealed text is v1.<keyId>.<iv>.<ciphertext+tag> with a fresh IV each time', async (t) => {
  const box = new SecretBox([key('k1')]);
  const a = box.seal('secret', AAD);
  const b = box.seal('secret', AAD);
  t.not(a, b, 'the same plaintext seals differently');
  const [version, keyId, iv, body] = a.split('.');
  t.equal(version, 'v1');
  t.equal(keyId, 'k1');
  t.equal(Buffer.from(iv!, 'base64url').length, 12, '96-bit IV');
  t.equal(Buffer.from(body!, 'base64url').length, 'secret'.length + 16, 'ciphertext and a 128-bit tag');
  t.not(a.split('.')[2], b.split('.')[2], 'IVs differ');
  t.equal(SecretBox.keyIdOf(a), 'k1');
});

t.test('a tampered ciphertext, IV or tag does not open', async (t) => {
  const box = new SecretBox([key('k1')]);
  const sealed = box.seal('the application secret', AAD);
  const bodyLength = Buffer.from(sealed.split('.')[3]!, 'base64url').length;
  const tampered = {
    'ciphertext byte': withPart(sealed, 3, (b) => flipByte(b, 0)),
    'tag byte': withPart(sealed, 3, (b) => flipByte(b, bodyLength - 1)),
    'IV byte': withPart(sealed, 2, (iv) => flipByte(iv, 0)),
    'tag cut off': withPart(sealed, 3, (b) =>
      Buffer.from(b, 'base64url')
        .subarray(0, bodyLength - 16)
        .toString('base64url'),
    ),
    'last tag byte dropped': withPart(sealed, 3, (b) =>
      Buffer.from(b, 'base64url')
        .subarray(0, bodyLength - 1)
        .toString('base64url'),
    ),
    'empty body': withPart(sealed, 3, () => ''),
    'another version': withPart(sealed, 0, () => 'v2'),
    'not sealed at all': 'the application secret',
  };
  for (const [name, text] of Object.entries(tampered)) t.throws(() => box.open(text, AAD), name);
});

t.test('a ciphertext with a truncated tag does not open, even when the short tag is genuine', async (t) => {
  // GCM tags may be cut to 4 bytes, and Node accepts any such length unless told which one to expect: a box that
  // reads "the last 16 bytes, or fewer" opens a forgery that needs 2^32 tries instead of 2^128.
  const master = randomBytes(32);
  const box = new SecretBox([{ id: 'k1', key: master }]);
  const derived = Buffer.from(hkdfSync('sha256', master, 'pcc-2fa', 'secret-box/v1', 32));
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', derived, iv);
  cipher.setAAD(Buffer.from(AAD));
  const ciphertext = Buffer.concat([cipher.update('8 bytes!'), cipher.final()]);
  const tag = cipher.getAuthTag();
  const text = (body: Buffer) => ['v1', 'k1', iv.toString('base64url'), body.toString('base64url')].join('.');
  t.equal(box.open(text(Buffer.concat([ciphertext, tag])), AAD), '8 bytes!', 'control: the full tag opens');
  for (const length of [4, 8, 12]) {
    t.throws(() => box.open(text(Buffer.concat([ciphertext, tag.subarray(0, length)])), AAD), `a ${length}-byte tag`);
  }
});

t.test('the wrong associated data does not open: a ciphertext copied to another row is useless', async (t) => {
  const box = new SecretBox([key('k1')]);
  const sealed = box.seal('secret', 'application:AAAA');
  t.throws(() => box.open(sealed, 'application:BBBB'));
  t.throws(() => box.open(sealed, ''));
  t.equal(box.open(sealed, 'application:AAAA'), 'secret');
});

t.test('a key id the box does not hold does not open, nor does another key under the same id', async (t) => {
  const sealed = new SecretBox([key('k1')]).seal('secret', AAD);
  t.throws(() => new SecretBox([key('k2')]).open(sealed, AAD), /unknown key id k1/);
  t.throws(() => new SecretBox([key('k1')]).open(sealed, AAD), 'same id, other key');
  t.throws(() =>
    new SecretBox([key('k1')]).open(
      withPart(sealed, 1, () => ''),
      AAD,
    ),
  );
});

t.test('rotation: a box with [new, old] opens old ciphertexts and seals with the new key', async (t) => {
  const oldKey = key('old');
  const newKey = key('new');
  const before = new SecretBox([oldKey]).seal('sealed long ago', AAD);
  const rotated = new SecretBox([newKey, oldKey]);
  t.equal(rotated.activeKeyId, 'new');
  t.equal(rotated.open(before, AAD), 'sealed long ago', 'old ciphertexts still open');
  const after = rotated.seal('sealed now', AAD);
  t.equal(SecretBox.keyIdOf(after), 'new', 'new ciphertexts name the new key');
  t.equal(new SecretBox([newKey]).open(after, AAD), 'sealed now', 'and open without the old key');
  t.throws(() => new SecretBox([oldKey]).open(after, AAD), 'the old key alone does not open them');
});

t.test('a box needs at least one key', async (t) => {
  t.throws(() => new SecretBox([]), /at least one key/);
});

t.test('parseMasterKeys reads id:base64 pairs, the first one sealing', async (t) => {
  const a = randomBytes(32);
  const b = randomBytes(32);
  const keys = parseMasterKeys(` k-2026_a:${a.toString('base64')} , old:${b.toString('base64')},`);
  t.strictSame(
    keys.map((k) => k.id),
    ['k-2026_a', 'old'],
  );
  t.ok(keys[0]!.key.equals(a) && keys[1]!.key.equals(b));
  const generated = newMasterKeyText('fresh');
  const [parsed] = parseMasterKeys(generated);
  t.equal(parsed?.id, 'fresh');
  t.equal(parsed?.key.length, 32);
  const box = new SecretBox(parseMasterKeys(generated));
  t.equal(box.open(box.seal('x', AAD), AAD), 'x');
});

t.test('parseMasterKeys rejects malformed input', async (t) => {
  const b64 = randomBytes(32).toString('base64');
  const bad = {
    'no colon': b64,
    'no id': `:${b64}`,
    'no key': 'k1:',
    'an id with a dot (the sealed text separator)': `k.1:${b64}`,
    'an id with a space': `k 1:${b64}`,
    'an id longer than 32': `${'k'.repeat(33)}:${b64}`,
    'a 16-byte key': `k1:${randomBytes(16).toString('base64')}`,
    'a 64-byte key': `k1:${randomBytes(64).toString('base64')}`,
    'not base64': `k1:${'!'.repeat(44)}`,
    'the same id twice': `k1:${b64},k1:${randomBytes(32).toString('base64')}`,
  };
  for (const [name, text] of Object.entries(bad)) t.throws(() => parseMasterKeys(text), name);
  t.throws(() => new SecretBox(parseMasterKeys(' , ')), 'no key at all');
});
