import { createHmac, timingSafeEqual } from 'node:crypto';
import { generateSecret, generateURI } from 'otplib';

/** RFC 6238 with what every authenticator app reads: SHA-1, 6 digits, 30 s. */
const TOTP_PERIOD = 30;

/** A 160-bit secret from a CSPRNG (RFC 4226 R6), base32. */
export const newTotpSecret = (): string => generateSecret({ length: 20 });

/**
 * The `otpauth://` URI. Google Authenticator, Authy and FreeOTP show "issuer (label)": the issuer names the Private
 * Cloud, the label the user's login.
 */
export function otpauthUri(secret: string, serviceName: string, login: string): string {
  return generateURI({ issuer: `PCC ${serviceName}`, label: login, secret });
}

/** The QR code library, loaded on the first enrollment rather than in every process at start (~5 MB). */
const qrCodes = async () => (await import('qrcode')).default;

export const qrCodeDataUri = async (uri: string): Promise<string> =>
  (await qrCodes()).toDataURL(uri, { errorCorrectionLevel: 'M', margin: 2, width: 256 });

/**
 * Checks a code against the current step ±1 (RFC 6238: HMAC-SHA-1 of the step, dynamically truncated to 6 digits).
 * Returns the matching time step (for the replay guard), or undefined. The three steps are always computed and
 * compared in constant time, and the HMAC is Node's own: a login runs it on the event loop (otplib's was JavaScript,
 * 20-50 µs a check).
 */
export async function matchTotp(secret: string, code: string, now: Date): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined;
  const key = base32Decode(secret);
  if (key === undefined || key.length === 0) return undefined;
  const given = Buffer.from(code, 'latin1');
  const step = Math.floor(now.getTime() / 1000 / TOTP_PERIOD);
  let matched: number | undefined;
  // The current step first: a code of the current step and of a neighbour (one in a million) counts as the current.
  for (const candidate of [step, step - 1, step + 1]) {
    const ok = timingSafeEqual(Buffer.from(hotp(key, candidate), 'latin1'), given);
    if (ok && matched === undefined) matched = candidate;
  }
  return matched;
}

/** RFC 4226's HOTP value of `counter`, 6 digits. */
function hotp(key: Buffer, counter: number): string {
  const message = Buffer.alloc(8);
  message.writeUInt32BE(Math.floor(counter / 2 ** 32), 0);
  message.writeUInt32BE(counter >>> 0, 4);
  const mac = createHmac('sha1', key).update(message).digest();
  const offset = mac[19]! & 0x0f;
  const value = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(value % 1_000_000).padStart(6, '0');
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32, as authenticator apps read a secret: case and `=` padding ignored; any other character refused. */
export function base32Decode(text: string): Buffer | undefined {
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of text.toUpperCase().replace(/=+$/, '')) {
    const index = BASE32.indexOf(char);
    if (index < 0) return undefined;
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/** The same QR code as a PNG file, for an `<img>` served by the certified interface's pages. */
export const qrCodePng = async (uri: string): Promise<Buffer> =>
  (await qrCodes()).toBuffer(uri, { type: 'png', errorCorrectionLevel: 'M', margin: 2, width: 256 });
