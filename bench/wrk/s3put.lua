-- Uploads for bench/s3.sh, both sides built the same way: every request
-- is built once in init() and request() hands wrk one of those strings,
-- so the client's work per request (a copy of it into wrk's buffer) is
-- the same for both servers.
--
--   BulletDrop: POST /api/uploads/sharex, the multipart body ShareX sends
--   (as sharex.lua), with an API key:
--     wrk -s bench/wrk/s3put.lua http://127.0.0.1:PORT -- bd FILE API_KEY
--
--   The store's own PUT through a plain nginx proxy_pass: PUT /BUCKET/KEY,
--   signed with AWS Signature V4 by bench/s3.pl (BulletDrop::S3::sign, the
--   payload's real SHA-256, which RGW checks as it checks BulletDrop's).
--   LIST has one line per request, "PATH<TAB>X-AMZ-DATE<TAB>AUTHORIZATION",
--   each for its own key; thread i of n takes lines i, i + n, ... and sends
--   them in turn, again and again (a key is written over once every
--   n * lines-per-thread requests: a new string per request, 5 MB each,
--   would cost the client an allocation and page faults every time):
--     wrk -s bench/wrk/s3put.lua http://127.0.0.1:PORT -- \
--         s3 FILE LIST HOST PAYLOAD_SHA256
--
-- done() prints common.lua's RESULT line.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local boundary = "--------------------8dd0a1f2c3b4d5e6"
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
   for _, t in ipairs(threads) do
      t:set("nthreads", #threads)
   end
end

local reqs = {}
local n = 0

function init(args)
   local body = read_file(args[2])
   if args[1] == "bd" then
      local headers = {
         ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
         ["Authorization"] = "Bearer " .. args[3],
      }
      reqs[1] = wrk.format("POST", "/api/uploads/sharex", headers,
         "--" .. boundary .. "\r\n"
         .. "Content-Disposition: form-data; name=\"file\"; "
         .. "filename=\"shot.png\"\r\n"
         .. "Content-Type: image/png\r\n\r\n"
         .. body
         .. "\r\n--" .. boundary .. "--\r\n")
   else
      local i = 0
      for line in io.lines(args[3]) do
         if i % nthreads == id then
            local path, date, auth = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
            reqs[#reqs + 1] = wrk.format("PUT", path, {
               ["Host"] = args[4],
               ["Content-Type"] = "image/png",
               ["X-Amz-Date"] = date,
               ["X-Amz-Content-SHA256"] = args[5],
               ["Authorization"] = auth,
            }, body)
         end
         i = i + 1
      end
   end
end

function request()
   n = n % #reqs + 1
   return reqs[n]
end
