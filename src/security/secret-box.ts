import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

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
  readonly activeKeyId: string;

  constructor(masterKeys: MasterKey[]) {
    const [active] = masterKeys;
    if (!active) throw new Error('SecretBox needs at least one key');
    this.activeKeyId = active.id;
    // Derived per purpose: the master key itself never encrypts anything.
    this.#keys = new Map(masterKeys.map((k) => [k.id, Buffer.from(hkdfSync('sha256', k.key, 'pcc-2fa', 'secret-box/v1', 32))]));
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
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(ivText, 'base64url'));
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - 16));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
  }

  static keyIdOf(sealed: string): string | undefined {
    return sealed.split('.')[1];
  }
}

/** `SECRET_KEYS`: `id:base64key[,id:base64key…]`, 32-byte keys, the first one seals. */
export function parseMasterKeys(text: string): MasterKey[] {
  return text
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
}

export const newMasterKeyText = (id = `k${Date.now().toString(36)}`) => `${id}:${randomBytes(32).toString('base64')}`;
