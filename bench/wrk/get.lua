-- GET of one stored file, for bench/serve.sh: the same request every time
-- (see common.lua), with the Host header given, so that the same nginx
-- serves it either through BulletDrop's file domain or through a plain
-- location.  done() prints common.lua's RESULT line, then
--   CHECK checked=0|1 answers=N non200=N badlen=N first=<status>:<length>
--
--   wrk -s bench/wrk/get.lua http://127.0.0.1:PORT -- PATH HOST SIZE [check]
--
-- With "check", every answer must be a 200 with the whole file: the
-- others are counted (by status, and 200s of another length), and
-- bench/serve.pl fails on any.  Without it there is no response()
-- function, and wrk itself only counts statuses over 399: a response()
-- makes wrk keep each answer's body and hand it to Lua as a string, which
-- made wrk's CPU per answer 4 times as much (0.07 to 0.31 ms for 300 KB,
-- 2.1 to 7.5 ms for 5 MB) and the client, not nginx, what was measured.
-- bench/serve.pl checks with it during each file's warm-up, and checks
-- every measured answer's status on the server side (a log of anything
-- but 200).

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   wrk.method = "GET"
   wrk.path = args[1]
   wrk.headers["Host"] = args[2]
   size = tonumber(args[3])
   checked = args[4] == "check" and 1 or 0
   if checked == 0 then
      -- wrk asks whether there is one after init()
      response = nil
   end
   answers = 0
   non200 = 0
   badlen = 0
   first = ""
end

function response(status, headers, body)
   answers = answers + 1
   if status ~= 200 then
      non200 = non200 + 1
   elseif #body ~= size then
      badlen = badlen + 1
   else
      return
   end
   if first == "" then
      first = status .. ":" .. #body
   end
end

local result = done

function done(summary, latency, requests)
   result(summary, latency, requests)
   local a, n, b, f, c = 0, 0, 0, "", 0
   for _, t in ipairs(threads) do
      c = t:get("checked")
      a = a + t:get("answers")
      n = n + t:get("non200")
      b = b + t:get("badlen")
      if f == "" then f = t:get("first") end
   end
   io.write(string.format(
      "CHECK checked=%d answers=%d non200=%d badlen=%d first=%s\n",
      c, a, n, b, f == "" and "-" or f))
end
