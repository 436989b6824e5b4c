-- wrk script: GET requests cycling over the paths listed in a file (one per line).
--
--   wrk -t1 -c2 -d10s -s bench/get.lua http://127.0.0.1:18010 -- PATHS_FILE TOKEN
--
-- Used for the history benchmark (many users with 500 participations each). Counts 2xx and
-- other statuses; prints one BENCH_JSON line with the latency percentiles (p95 included).

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   paths = {}
   for line in io.lines(args[1]) do
      if string.len(line) > 0 then
         table.insert(paths, line)
      end
   end
   token = args[2]
   n = tid * 7
   ok = 0
   other = 0
end

function request()
   n = n + 1
   local path = paths[(n % #paths) + 1]
   return wrk.format("GET", path, {["Host"] = wrk.host, ["X-Service-Token"] = token}, nil)
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local o, ot = 0, 0
   for _, t in ipairs(threads) do
      o = o + t:get("ok")
      ot = ot + t:get("other")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, "status_errors": %d, ' ..
      '"ok": %d, "other": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, ' ..
      '"max_ms": %.3f, "mean_ms": %.3f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.timeout, e.status, o, ot,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(95) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000))
end
