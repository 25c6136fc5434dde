import fs from 'node:fs';
import path from 'node:path';
import selfsigned from 'selfsigned';

/** A self-signed certificate for localhost, 127.0.0.1 and ::1, valid a year: for local HTTPS only. */
export async function writeDevCert(dir: string): Promise<{ cert: string; key: string; fingerprint: string }> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  fs.writeFileSync(cert, pems.cert, { mode: 0o644 });
  fs.writeFileSync(key, pems.private, { mode: 0o600 });
  return { cert, key, fingerprint: pems.fingerprint };
}
