-- An account's unlock (`POST …/user/{userId}/unlock`, the CLI's `unlock`) forgets its keys: its own, its pairs
-- (`…@network`) and its factors (`…#factor`), found by `LIKE 'prefix%'`. The primary key's index, in the database's
-- collation, cannot serve a prefix (only the "C" collation can), so each unlock read every key the lockout holds: one
-- per address and per (account, address) pair that failed in the last day, as many as an attacker's addresses make.
-- With 50,000 of them the statement read them all; a service's owner calling unlock at the API's rate limit would
-- keep PostgreSQL busy for every tenant. An index in byte order (`text_pattern_ops`) serves the prefixes: 0.07 ms.
CREATE INDEX auth_failure_key_prefix_idx ON auth_failure (key text_pattern_ops);
