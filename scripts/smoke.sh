#!/usr/bin/env bash
# Smoke test of a running pcc-2fa over HTTP, with curl: health, the service list, a whole 2FA-whitelist lifecycle
# (add → enabled, changeProperties, delete → removed, each through its task), two error shapes, and X-Ovh-QueryID on
# every response. The entry it adds ends `removed`.
#
# With SMS_LOG, the file where the server's `log` SMS sender prints (SMS_PROVIDER=log: the server's standard output),
# it also runs the guide's flow (use-2FA.md): create a token validator and confirm his phone number, log in on /secure,
# enroll a TOTP secret, send the new password with the TOTP code, validate the operation with the token sent by SMS,
# then log in with the new password and a TOTP code. It needs a service without a token validator yet (a new one: its
# first validator is created at once, without validation), and leaves one there, with 2FA on.
#
#   BASE_URL=http://127.0.0.1:3000 SERVICE=pcc-demo TOKEN=… scripts/smoke.sh
#   BASE_URL=http://127.0.0.1:3000 SERVICE=pcc-demo CLIENT_ID=… CLIENT_SECRET=… scripts/smoke.sh
#   … SMS_LOG=server.log scripts/smoke.sh
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
SMS_LOG="${SMS_LOG:-}"

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
# response carries X-Ovh-QueryID. Sends `Authorization: Bearer $TOKEN` when TOKEN is set (a call on /secure sends the
# session token instead: `TOKEN=$session api …`).
api() {
  local method="$1" path="$2" body="${3-}"
  local args=(-sS --max-time 10 -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -X "$method" -H 'Accept: application/json')
  if [[ -n "$TOKEN" ]]; then args+=(-H "Authorization: Bearer $TOKEN"); fi
  if [[ -n "$body" ]]; then args+=(-H 'Content-Type: application/json' --data-binary "$body"); fi
  : >"$tmp/body"
  : >"$tmp/headers"
  LAST="$method $path${body:+ $body}"
  if [[ -n "$CLIENT_SECRET" ]]; then LAST="${LAST//"$CLIENT_SECRET"/[redacted]}"; fi
  LAST="$(sed -E 's/"(password|newPassword|token)":"[^"]*"/"\1":"[redacted]"/g' <<<"$LAST")"
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

# totp SECRET STEP: the RFC 6238 code (SHA-1, 6 digits, 30-s steps) of a base32 secret at a time step, computed here
# with node's own crypto, independently of the server's otplib.
totp() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const [secret, step] = process.argv.slice(1);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bits = "";
    for (const c of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
    const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
    const counter = Buffer.alloc(8);
    counter.writeBigUInt64BE(BigInt(step));
    const mac = require("crypto").createHmac("sha1", key).update(counter).digest();
    const offset = mac[mac.length - 1] & 15;
    const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1e6;
    process.stdout.write(String(code).padStart(6, "0"));
  ' "$1" "$2"
}

time_step() { node -p 'Math.floor(Date.now() / 30000)'; }

# sms_token PHONE TEXT: waits for the SMS to PHONE whose text holds TEXT in SMS_LOG (the `log` sender prints
# `[SMS to <number>] <text>`), and prints its 8-digit token.
sms_token() {
  local phone="$1" text="$2" deadline=$((SECONDS + TASK_TIMEOUT_S)) line=''
  while :; do
    line="$(grep -aF "[SMS to $phone] " "$SMS_LOG" | grep -aF -- "$text" | tail -n 1 || true)"
    if [[ "$line" =~ Token:\ ([0-9]{8}) ]]; then
      printf '%s' "${BASH_REMATCH[1]}"
      return 0
    fi
    ((SECONDS < deadline)) || fail "an SMS to $phone about \"$text\" in $SMS_LOG within ${TASK_TIMEOUT_S}s" 'none'
    sleep 0.2
  done
}

# The guide (use-2FA.md), through the API: a token validator's 2FA set-up on the certified interface, /secure/$SERVICE.
guide_flow() {
  [[ -r "$SMS_LOG" ]] || fail "SMS_LOG ($SMS_LOG) to be a readable file" 'no such file'
  local name phone password new_password user_id task session secret enrollment change_task operation code step login_step
  name="smoke$(node -p 'require("crypto").randomBytes(4).toString("hex")')"
  phone="+33.6$(node -p 'String(require("crypto").randomInt(1e8)).padStart(8, "0")')"
  password="Smoke-$(node -p 'require("crypto").randomBytes(9).toString("base64url")')-1a!"
  new_password="Smoke-$(node -p 'require("crypto").randomBytes(9).toString("base64url")')-2b!"
  local svc="/1.0/dedicatedCloud/$SERVICE" sec="/secure/$SERVICE"

  api POST "$svc/user" "{\"name\":\"$name\",\"password\":\"$password\",\"phoneNumber\":\"$phone\",\"tokenValidator\":true}"
  expect_status 200
  expect_json 'd.name' addUser 'the task name'
  [[ "$(json 'd.state')" != waitingTodo ]] ||
    fail "a service without a token validator (the guide's flow creates the first one)" "the creation waits for validation: $BODY"
  task="$(json 'd.taskId')"
  user_id="$(json 'd.userId')"
  wait_task "$task"
  api GET "$svc/user/$user_id"
  expect_status 200
  expect_json 'd.isTokenValidator && d.phoneNumber' "$phone" "the validator $name and his phone number"
  ok "guide: POST user $name (token validator, phone $phone): task $task done"

  api POST "$svc/user/$user_id/confirmPhoneNumber" "{\"token\":\"$(sms_token "$phone" "confirm the phone number of $name")\"}"
  expect_status 200
  wait_task "$(json 'd.taskId')"
  ok "guide: the token sent by SMS confirms $phone"

  TOKEN='' api POST "$sec/session" "{\"login\":\"$name\",\"password\":\"$password\"}"
  expect_status 200
  expect_json 'd.scope' full 'the session scope'
  session="$(json 'd.sessionToken')"
  ok "guide: $name logs in on $sec with his password alone"

  TOKEN="$session" api POST "$sec/credentials/enrollment"
  expect_status 200
  enrollment="$(json 'd.enrollmentId')"
  secret="$(json 'd.secret')"
  [[ "$secret" =~ ^[A-Z2-7]{32}$ ]] || fail 'a base32 TOTP secret' "$BODY"
  expect_json "d.qrCode.startsWith('data:image/png;base64,')" true 'a QR code'
  ok 'guide: enrollment offers a TOTP secret and its QR code'

  step="$(time_step)"
  TOKEN="$session" api POST "$sec/credentials" \
    "{\"enrollmentId\":\"$enrollment\",\"newPassword\":\"$new_password\",\"code\":\"$(totp "$secret" "$step")\"}"
  expect_status 202
  change_task="$(json 'd.taskId')"
  operation="$(json 'd.operationId')"
  api GET "$svc/task/$change_task"
  expect_status 200
  expect_json 'd.state' waitingTodo 'the state of the credentials task'
  ok "guide: the new password and the TOTP code answer 202: task $change_task waits for operation $operation"

  TOKEN="$session" api POST "$sec/operation/$operation/validate" \
    "{\"token\":\"$(sms_token "$phone" "operation $operation ")\"}"
  expect_status 200
  wait_task "$change_task"
  api GET "$svc/user/$user_id"
  expect_status 200
  expect_json 'd.twoFactor.state' enabled "the 2FA state of $name"
  ok "guide: the token sent by SMS validates operation $operation; task $change_task done, 2FA enabled"

  TOKEN='' api POST "$sec/session" "{\"login\":\"$name\",\"password\":\"$new_password\"}"
  expect_status 401
  ok 'guide: the new password alone no longer logs in'

  # Each time step is accepted once, and the enrollment used its own: the login takes the next one if the clock is
  # still in it (the server accepts the current step ±1).
  login_step="$(time_step)"
  ((login_step > step)) || login_step=$((step + 1))
  code="$(totp "$secret" "$login_step")"
  TOKEN='' api POST "$sec/session" "{\"login\":\"$name\",\"password\":\"$new_password\",\"token\":\"$code\"}"
  expect_status 200
  expect_json 'd.scope' full 'the session scope'
  ok "guide: $name logs in with his new password and a TOTP code"
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

if [[ -n "$SMS_LOG" ]]; then
  guide_flow
else
  echo "# the guide's flow is skipped: set SMS_LOG to the server's log (SMS_PROVIDER=log) to run it"
fi

ok 'every response carried X-Ovh-QueryID'
echo "# smoke: $CHECKS checks passed"
