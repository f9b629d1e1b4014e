-- Shared by the wrk scripts of bench/upload.sh (loaded with dofile).
--
-- Both scripts set wrk.method, wrk.path, wrk.headers and wrk.body in
-- init() and define no request(): wrk then builds each thread's request
-- once and sends those same bytes every time, for both servers alike.
-- (A request() that returned a new 300 KB string per call would cost the
-- client a fresh allocation each time; LuaJIT reuses an identical string
-- but not one that differs, e.g. by its path, so the client would load
-- the two servers unequally.)  done() prints one line for bench/upload.pl.

function read_file(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d duration_us=%d rps=%.2f bytes=%d " ..
      "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f " ..
      "connect=%d read=%d write=%d status=%d timeout=%d\n",
      summary.requests, summary.duration, summary.requests / secs,
      summary.bytes,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout))
end
