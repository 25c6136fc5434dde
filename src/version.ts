import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** This service's version, from the package.json above this file (src/, or the test build's copy of it). */
export function serviceVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  }
  return '0.0.0';
}
