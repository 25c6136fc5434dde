// What an operator watches and runs beside the service: /metrics, and the CLI against a running server.
// One test process for these files (see scripts/test.mjs); each file still runs alone: npm test -- test/<file>.test.ts
import '../metrics.test.js';
import '../cli-control.test.js';
