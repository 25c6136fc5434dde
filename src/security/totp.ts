import { generateSecret, generateURI, verify } from 'otplib';

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
 * Checks a code against the current step ±1. Returns the matching time step (for the replay guard), or undefined.
 */
export async function matchTotp(secret: string, code: string, now: Date): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined;
  try {
    const epoch = Math.floor(now.getTime() / 1000);
    const result = await verify({ secret, token: code, epoch, epochTolerance: TOTP_PERIOD });
    if (!result.valid) return undefined;
    return Math.floor(epoch / TOTP_PERIOD) + ((result as { delta?: number }).delta ?? 0);
  } catch {
    return undefined;
  }
}

/** The same QR code as a PNG file, for an `<img>` served by the certified interface's pages. */
export const qrCodePng = async (uri: string): Promise<Buffer> =>
  (await qrCodes()).toBuffer(uri, { type: 'png', errorCorrectionLevel: 'M', margin: 2, width: 256 });
