// Failed logins that give nothing away, alone in its process: its timing test sets the process-wide argon2id cost to
// the production one, and the files of a suite set up their apps concurrently (top-level await), which would reset it
// under the measurement.
import '../login-answers.test.js';
