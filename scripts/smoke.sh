#!/usr/bin/env bash
# Smoke test of a running pcc-2fa over HTTP, with curl: health, the service list, a whole 2FA-whitelist lifecycle
# (add → enabled, changeProperties, delete → removed, each through its task), two error shapes, and X-Ovh-QueryID on
# every response. Leaves the service as it found it (the entry it adds ends `removed`).
#
#   BASE_URL=http://127.0.0.1:3000 SERVICE=pcc-demo TOKEN=… scripts/smoke.sh
#   BASE_URL=http://127.0.0.1:3000 SERVICE=pcc-demo CLIENT_ID=… CLIENT_SECRET=… scripts/smoke.sh
#
# The service must exist and belong to the account of the credentials: TOKEN is an OAuth2 bearer token; with CLIENT_ID
# and CLIENT_SECRET instead (`npm run cli -- oauth-client create --account <login>`), the script gets one itself. JSON is
# read with `node -e`, which is there wherever the service runs. Exits 0 when every check passed; otherwise prints what
# it expected and what it got.
set -euo pipefail

BASE_URL="${BASE_URL:-http://127.0.0.1:3000}"
BASE_URL="${BASE_URL%/}"
SERVICE="${SERVICE:-pcc-demo}"
TOKEN="${TOKEN:-}"
CLIENT_ID="${CLIENT_ID:-}"
CLIENT_SECRET="${CLIENT_SECRET:-}"
TASK_TIMEOUT_S="${TASK_TIMEOUT_S:-20}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

STATUS=''
BODY=''
LAST=''
CHECKS=0

fail() {
  printf 'FAIL: expected %s\n      got %s\n      (last call: %s)\n' "$1" "$2" "$LAST" >&2
  exit 1
}

ok() {
  CHECKS=$((CHECKS + 1))
  printf 'ok %d - %s\n' "$CHECKS" "$1"
}

# api METHOD PATH [JSON_BODY]: the one way this script calls the service. Sets STATUS and BODY, and checks that the
# response carries X-Ovh-QueryID. Sends `Authorization: Bearer $TOKEN` when TOKEN is set.
api() {
  local method="$1" path="$2" body="${3-}"
  local args=(-sS --max-time 10 -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -X "$method" -H 'Accept: application/json')
  if [[ -n "$TOKEN" ]]; then args+=(-H "Authorization: Bearer $TOKEN"); fi
  if [[ -n "$body" ]]; then args+=(-H 'Content-Type: application/json' --data-binary "$body"); fi
  : >"$tmp/body"
  : >"$tmp/headers"
  LAST="$method $path${body:+ $body}"
  if [[ -n "$CLIENT_SECRET" ]]; then LAST="${LAST//"$CLIENT_SECRET"/[redacted]}"; fi
  STATUS="$(curl "${args[@]}" "$BASE_URL$path" 2>"$tmp/curl-error")" || {
    fail "an HTTP answer from $BASE_URL$path" "no answer: $(cat "$tmp/curl-error")"
  }
  BODY="$(cat "$tmp/body")"
  local query_id
  query_id="$(tr -d '\r' <"$tmp/headers" | sed -n 's/^[Xx]-[Oo][Vv][Hh]-[Qq]uery[Ii][Dd]: *//p' | tail -n 1)"
  [[ -n "$query_id" ]] || fail "an X-Ovh-QueryID header" "HTTP $STATUS with headers: $(tr -d '\r' <"$tmp/headers" | tr '\n' ' ')"
}

# json EXPR: evaluates a JavaScript expression on the last response's body, bound to `d`; prints strings bare and
# anything else as JSON, and `<the error>` when the body is not JSON or the expression throws.
json() {
  # shellcheck disable=SC2016 # JavaScript, not shell: nothing to expand
  BODY_JSON="$BODY" node -e '
    let v;
    try {
      const d = JSON.parse(process.env.BODY_JSON);
      v = new Function("d", `return (${process.argv[1]});`)(d);
    } catch (err) {
      v = `<${err.message}>`;
    }
    process.stdout.write(typeof v === "string" ? v : (JSON.stringify(v) ?? "undefined"));
  ' "$1"
}

expect_status() {
  [[ "$STATUS" == "$1" ]] || fail "HTTP $1" "HTTP $STATUS: $BODY"
}

# expect_json EXPR VALUE [WHAT]: the expression on the last body must print VALUE.
expect_json() {
  local got
  got="$(json "$1")"
  [[ "$got" == "$2" ]] || fail "${3:-$1} = $2" "$got, in: $BODY"
}

# wait_task TASK_ID: polls the task until `done`; fails on `error`/`canceled` or after TASK_TIMEOUT_S seconds.
wait_task() {
  local id="$1" state='' deadline=$((SECONDS + TASK_TIMEOUT_S))
  while :; do
    api GET "/1.0/dedicatedCloud/$SERVICE/task/$id"
    expect_status 200
    state="$(json 'd.state')"
    case "$state" in
      done) return 0 ;;
      error | canceled) fail "task $id to end in state done" "state $state: $BODY" ;;
    esac
    ((SECONDS < deadline)) || fail "task $id done within ${TASK_TIMEOUT_S}s" "state $state: $BODY"
    sleep 0.2
  done
}

echo "# smoke test of $BASE_URL on service $SERVICE"

api GET /health/live
expect_status 200
expect_json 'd.status' ok
ok 'GET /health/live answers ok'

api GET /health/ready
expect_status 200
expect_json 'd.status' ok
ok 'GET /health/ready answers ok'

if [[ -z "$TOKEN" && -n "$CLIENT_ID" ]]; then
  api POST /1.0/auth/oauth2/token "{\"grant_type\":\"client_credentials\",\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}"
  expect_status 200
  expect_json 'd.token_type' Bearer 'the token type'
  TOKEN="$(json 'd.access_token')"
  ok 'POST /1.0/auth/oauth2/token issues a bearer token'
fi

if [[ -n "$TOKEN" ]]; then
  TOKEN='' api GET /1.0/dedicatedCloud
  expect_status 403
  expect_json 'd.errorCode' INVALID_KEY 'the error code'
  ok 'a call without credentials answers 403 INVALID_KEY'
fi

api GET /1.0/dedicatedCloud
expect_status 200
expect_json "Array.isArray(d) && d.includes('$SERVICE')" true "the service list to include $SERVICE"
ok "GET /1.0/dedicatedCloud lists $SERVICE"

# A random documentation address (RFC 5737); another one if an earlier, interrupted run left it live.
whitelist="/1.0/dedicatedCloud/$SERVICE/twoFAWhitelist"
ip=''
for _ in 1 2 3 4 5; do
  ip="198.51.100.$((RANDOM % 254 + 1))"
  api POST "$whitelist" "{\"ip\":\"$ip/32\",\"description\":\"smoke test\"}"
  [[ "$STATUS" == 400 && "$BODY" == *'already in the 2FA whitelist'* ]] || break
done
expect_status 200
expect_json 'd.name' addTwoFAWhitelist 'the task name'
add_task="$(json 'd.taskId')"
[[ "$add_task" =~ ^[0-9]+$ ]] || fail 'a numeric taskId' "$add_task"
ok "POST twoFAWhitelist $ip/32 returns task $add_task"

wait_task "$add_task"
ok "task $add_task reaches done"

# The task does not name the entry (as at OVH): find it in the list, newest first.
api GET "$whitelist"
expect_status 200
ids="$(json 'd.slice().reverse().join(" ")')"
entry=''
for id in $ids; do
  api GET "$whitelist/$id"
  expect_status 200
  if [[ "$(json "d.ip === '$ip' && d.cidrNetmask === 32")" == true ]]; then
    entry="$id"
    break
  fi
done
[[ -n "$entry" ]] || fail "an entry for $ip/32 in the list" "ids: $ids"
expect_json 'd.state' enabled "the state of entry $entry"
expect_json 'd.description' 'smoke test' "the description of entry $entry"
ok "GET twoFAWhitelist/$entry shows $ip/32 enabled"

api POST "$whitelist/$entry/changeProperties" '{"description":"smoke test, changed"}'
expect_status 200
expect_json 'd.name' changePropertiesTwoFAWhitelist 'the task name'
change_task="$(json 'd.taskId')"
wait_task "$change_task"
api GET "$whitelist/$entry"
expect_status 200
expect_json 'd.description' 'smoke test, changed' "the description of entry $entry"
ok "changeProperties updates the description (task $change_task done)"

api DELETE "$whitelist/$entry"
expect_status 200
expect_json 'd.name' removeTwoFAWhitelist 'the task name'
delete_task="$(json 'd.taskId')"
wait_task "$delete_task"
ok "DELETE twoFAWhitelist/$entry: task $delete_task reaches done"

api GET "$whitelist/$entry"
expect_status 200
expect_json 'd.state' removed "the state of entry $entry"
api GET "$whitelist"
expect_status 200
expect_json "d.includes($entry)" false "entry $entry in the list"
ok "entry $entry is removed and no longer listed"

api POST "$whitelist" '{"ip":"198.51.100.300","description":"smoke test, bad address"}'
expect_status 400
expect_json 'd.class' 'Client::BadRequest' 'the error class'
ok 'a malformed address answers 400 with class Client::BadRequest'

api GET /1.0/dedicatedCloud/pcc-smoke-no-such-service
expect_status 404
expect_json 'd.class' 'Client::NotFound' 'the error class'
api GET /1.0/dedicatedCloud/pcc-smoke-no-such-service/twoFAWhitelist
expect_status 404
expect_json 'd.class' 'Client::NotFound' 'the error class'
ok 'an unknown service answers 404 with class Client::NotFound'

ok 'every response carried X-Ovh-QueryID'
echo "# smoke: $CHECKS checks passed"
