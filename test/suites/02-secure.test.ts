// The certified interface: the guide’s flow, password lost, lockout, and the first security review.
// One test process for these files (see scripts/test.mjs); each file still runs alone: npm test -- test/<file>.test.ts
import '../secure-flow.test.js';
import '../password-lost.test.js';
import '../lockout.test.js';
import '../security-review.test.js';
import '../unlock.test.js';
import '../sessions.test.js';
import '../login-context.test.js';
import '../totp.test.js';
