-- wrk script: every request registers a fresh (giveaway, user) pair.
--
--   wrk -t2 -c32 -d20s -s bench/register.lua http://127.0.0.1:18010 -- \
--       PATH GIVEAWAY_ID USER_BASE USERS_PER_THREAD TOKEN OUT_PREFIX
--
-- User index i (0 <= i < threads * USERS_PER_THREAD) is user id USER_BASE + floor(i/8)*10 + i%8 + 1:
-- ids ending in 1..8, the ones the Telegram stand-in calls members; bench/run.py pre-loads exactly
-- these users with the captcha completed. Thread t uses indexes [t*N, (t+1)*N), so no two requests
-- of a run share a user. Each request carries X-Request-ID "r<user id>", which both the service and
-- the ceiling app echo; every 201 appends that id to OUT_PREFIX-<thread>.txt, so bench/run.py can
-- compare the database with the registrations that were confirmed to the client.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   path = args[1]
   giveaway = args[2]
   base = tonumber(args[3])
   per_thread = tonumber(args[4])
   token = args[5]
   out_prefix = args[6]
   n = 0
   sent = 0
   created = 0
   ok200 = 0
   other = 0
   statuses = ""
   confirmed = io.open(out_prefix .. "-" .. tid .. ".txt", "w")
   confirmed:setvbuf("line")
end

function request()
   local i = tid * per_thread + (n % per_thread)
   n = n + 1
   sent = sent + 1
   local uid = string.format("%.0f", base + math.floor(i / 8) * 10 + (i % 8) + 1)
   local body = '{"giveaway_id": ' .. giveaway .. ', "user_id": ' .. uid ..
      ', "username": "u' .. uid .. '", "first_name": "Bench", "last_name": null}'
   local headers = {
      ["Host"] = wrk.host,
      ["Content-Type"] = "application/json",
      ["X-Service-Token"] = token,
      ["X-Request-ID"] = "r" .. uid,
   }
   return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
   if status == 201 then
      created = created + 1
      local rid = headers["X-Request-ID"] or headers["x-request-id"]
      if rid then
         confirmed:write(rid, "\n")
      end
   elseif status == 200 then
      ok200 = ok200 + 1
   else
      other = other + 1
      if string.len(statuses) < 200 then
         statuses = statuses .. status .. " "
      end
   end
end

function done(summary, latency, requests)
   local c, o2, ot, s, st = 0, 0, 0, 0, ""
   for _, t in ipairs(threads) do
      c = c + t:get("created")
      o2 = o2 + t:get("ok200")
      ot = ot + t:get("other")
      s = s + t:get("sent")
      st = st .. t:get("statuses")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, "status_errors": %d, ' ..
      '"created": %d, "ok200": %d, "other": %d, "sent": %d, "other_statuses": "%s", ' ..
      '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.timeout, e.status,
      c, o2, ot, s, st,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, latency.mean / 1000))
end
