// The twoFAWhitelist, allowedNetwork, the task engine and its worker, and error answers.
// One test process for these files (see scripts/test.mjs); each file still runs alone: npm test -- test/<file>.test.ts
import '../whitelist.test.js';
import '../allowed-network.test.js';
import '../tasks.test.js';
import '../worker.test.js';
import '../errors.test.js';
import '../read-path.test.js';
