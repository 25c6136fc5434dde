import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

const TAG_LENGTH = 16;

export interface MasterKey {
  id: string;
  key: Buffer;
}

/**
 * AES-256-GCM for secrets the service must read back (application secrets, TOTP secrets). The text stored is
 * `v1.<keyId>.<iv>.<ciphertext+tag>` (base64url), so each row names the key that sealed it and keys can rotate. The
 * row's identity is the associated data: a ciphertext copied to another row does not open.
 */
export class SecretBox {
  readonly #keys: Map<string, Buffer>;
  readonly #macKeys: Buffer[];
  readonly #masterKeys: readonly MasterKey[];
  readonly activeKeyId: string;

  constructor(masterKeys: MasterKey[]) {
    this.#masterKeys = [...masterKeys];
    const [active] = masterKeys;
    if (!active) throw new Error('SecretBox needs at least one key');
    this.activeKeyId = active.id;
    // Derived per purpose: the master key itself never encrypts anything.
    this.#keys = new Map(masterKeys.map((k) => [k.id, Buffer.from(hkdfSync('sha256', k.key, 'pcc-2fa', 'secret-box/v1', 32))]));
    this.#macKeys = masterKeys.map((k) => Buffer.from(hkdfSync('sha256', k.key, 'pcc-2fa', 'token-mac/v1', 32)));
  }

  seal(plaintext: string, associatedData: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.activeKeyId)!, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return ['v1', this.activeKeyId, iv.toString('base64url'), body.toString('base64url')].join('.');
  }

  open(sealed: string, associatedData: string): string {
    const [version, keyId, ivText, bodyText] = sealed.split('.');
    if (version !== 'v1' || !keyId || !ivText || !bodyText) throw new Error('not a sealed secret');
    const key = this.#keys.get(keyId);
    if (!key) throw new Error(`secret sealed with unknown key id ${keyId}`);
    const body = Buffer.from(bodyText, 'base64url');
    if (body.length < TAG_LENGTH) throw new Error('not a sealed secret');
    // The tag length is pinned: Node otherwise accepts tags cut down to 4 bytes, which makes forgeries cheap.
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(ivText, 'base64url'), { authTagLength: TAG_LENGTH });
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - TAG_LENGTH));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_LENGTH)), decipher.final()]).toString('utf8');
  }

  /**
   * A keyed hash for short codes (8-digit SMS tokens): unlike a plain SHA-256, a stolen table does not let anyone try
   * the 10^8 codes offline.
   */
  mac(data: string): Buffer {
    return createHmac('sha256', this.#macKeys[0]!).update(data, 'utf8').digest();
  }

  /** Whether `mac` was made from `data` by any of the keys (tokens made before a rotation stay valid). */
  macMatches(data: string, mac: Buffer): boolean {
    let ok = false;
    for (const key of this.#macKeys) {
      const candidate = createHmac('sha256', key).update(data, 'utf8').digest();
      ok = (candidate.length === mac.length && timingSafeEqual(candidate, mac)) || ok;
    }
    return ok;
  }

  /** The master keys, first the one that seals: to build a box with one more key (a rotation). */
  keys(): MasterKey[] {
    return [...this.#masterKeys];
  }

  static keyIdOf(sealed: string): string | undefined {
    return sealed.split('.')[1];
  }
}

/** `SECRET_KEYS`: `id:base64key[,id:base64key…]`, 32-byte keys, the first one seals. */
export function parseMasterKeys(text: string): MasterKey[] {
  const keys = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const [id, b64] = part.split(':');
      if (!id || !b64 || !/^[A-Za-z0-9_-]{1,32}$/.test(id))
        throw new Error('SECRET_KEYS: each key is id:base64 (id: letters, digits, - or _)');
      const key = Buffer.from(b64, 'base64');
      if (key.length !== 32) throw new Error(`SECRET_KEYS: key ${id} must be 32 bytes (base64 of 32 random bytes)`);
      return { id, key };
    });
  // Two keys under one id: the box would keep the last one and seal with it, not the first as documented.
  const ids = keys.map((k) => k.id);
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
  if (duplicate) throw new Error(`SECRET_KEYS: key id ${duplicate} is given twice`);
  return keys;
}

export const newMasterKeyText = (id = `k${Date.now().toString(36)}`) => `${id}:${randomBytes(32).toString('base64')}`;
