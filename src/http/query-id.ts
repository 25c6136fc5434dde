import { randomBytes } from 'node:crypto';
import os from 'node:os';

// OVH's query ids look like `EU.ext-3.63ac85b6.10528.27b4f1fc-…`: a region, the host, then a unique part.
const host =
  os
    .hostname()
    .replace(/[^A-Za-z0-9-]/g, '')
    .slice(0, 24) || 'pcc';

/** A fresh id for each request; an id sent by the client is never trusted or echoed. */
export function newQueryId(): string {
  return `PCC.${host}.${Date.now().toString(16)}.${randomBytes(6).toString('hex')}`;
}
