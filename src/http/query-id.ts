import { randomBytes } from 'node:crypto';
import os from 'node:os';

// OVH's query ids look like `EU.ext-3.63ac85b6.10528.27b4f1fc-…`: a region, the host, then a unique part.
const host =
  os
    .hostname()
    .replace(/[^A-Za-z0-9-]/g, '')
    .slice(0, 24) || 'pcc';

/** Random bytes drawn 6 at a time from a block refilled when spent: one call into the CSPRNG per 1,024 requests. */
const BLOCK = 6 * 1024;
let pool = randomBytes(BLOCK);
let offset = 0;

/** A fresh id for each request; an id sent by the client is never trusted or echoed. */
export function newQueryId(): string {
  if (offset + 6 > BLOCK) {
    pool = randomBytes(BLOCK);
    offset = 0;
  }
  const unique = pool.toString('hex', offset, offset + 6);
  offset += 6;
  return `PCC.${host}.${Date.now().toString(16)}.${unique}`;
}
